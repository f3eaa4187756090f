package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"emitop/model"
	"emitop/store"
)

// TestReportTellsTimeInTheConfigsZone: the shift report's times are in the configuration's
// `timezone` (as the dashboard's and `history`'s are), with the zone named, and without a
// configuration in the local one.
func TestReportTellsTimeInTheConfigsZone(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "emitop.db")
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	if err := st.Enqueue(context.Background(), store.RecordHealth(store.HealthChange{At: at, Account: "sv-main", Provider: "sv-dte",
		From: model.HealthUp, To: model.HealthDown})); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte("timezone = \"Asia/Kathmandu\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kathmandu, err := time.LoadLocation("Asia/Kathmandu")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		loc  *time.Location
	}{
		{[]string{"--config", cfg, "--db", db}, kathmandu},
		{[]string{"--db", db}, time.Local},
	} {
		code, out, errs := runCmd(append([]string{"report", "--since", "1h"}, c.args...)...)
		if code != 0 {
			t.Fatalf("report %v: %d %s", c.args, code, errs)
		}
		for _, want := range []string{
			"(" + at.In(c.loc).Format("2006-01-02 MST") + ")",
			"- **Health:** " + at.In(c.loc).Format("Mon 15:04") + " up → down",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("report %v lacks %q:\n%s", c.args, want, out)
			}
		}
	}
}
