package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"emitop/poller"
	"emitop/sandbox"
	"emitop/store"
)

func TestClearUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--doc", "x", "--reason", "r", "--yes"},
		{"--account", "a", "--reason", "r", "--yes"},
		{"--account", "a", "--doc", "x", "--yes"},         // no reason
		{"--account", "a", "--doc", "x", "--reason", "r"}, // stdin is not a terminal and no --yes
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"clear"}, args...), strings.NewReader("x\n"), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, %s", args, code, errb.String())
		}
	}
}

// TestClear deletes a bill the DIAN rejected at Factus: a dry run shows the request and
// sends nothing, the real one deletes it once and records who, why and what came of it;
// a provider without a delete says so.
func TestClear(t *testing.T) {
	sb, cfgPath := sandboxConfig(t, sandbox.Options{Scenario: "storm", Seed: 11, NoFaults: true}, "5s")
	ids := rejectedIDs(t, cfgPath, "factus-bog", func(poller.Item) bool { return true })
	if len(ids) == 0 {
		t.Fatal("factus-bog has no rejected bill")
	}
	id := ids[0]
	db := filepath.Join(t.TempDir(), "h.db")

	code, out, errs := runCmd("clear", "--config", cfgPath, "--db", db, "--account", "factus-bog", "--doc", id, "--dry-run")
	if code != 0 || !strings.Contains(out, "DELETE ") || !strings.Contains(out, "[redacted]") || !strings.Contains(out, "nothing sent") ||
		!strings.HasPrefix(out, "store: local file "+db+" (leases shared only with emitop processes on this host") {
		t.Fatalf("dry run: exit %d: %s%s", code, out, errs)
	}
	if n := sb.AccountStats("factus-bog").Deleted; n != 0 {
		t.Fatalf("the dry run deleted %d", n)
	}

	code, out, errs = runCmd("clear", "--config", cfgPath, "--db", db, "--account", "factus-bog", "--doc", id,
		"--reason", "customer NIT fixed in the ERP", "--yes")
	if code != 0 || !strings.HasPrefix(strings.Split(out, "\n")[len(strings.Split(strings.TrimSpace(out), "\n"))-1], "cleared") {
		t.Fatalf("clear: exit %d: %s%s", code, out, errs)
	}
	if n := sb.AccountStats("factus-bog").Deleted; n != 1 {
		t.Fatalf("%d deleted, want 1", n)
	}
	// The bill is gone: a second clear finds nothing to delete.
	if code, out, errs = runCmd("clear", "--config", cfgPath, "--db", db, "--account", "factus-bog", "--doc", id,
		"--reason", "again", "--yes"); code == 0 || !strings.Contains(out, "no such document") || sb.AccountStats("factus-bog").Deleted != 1 {
		t.Errorf("second clear: exit %d, %d deleted: %s%s", code, sb.AccountStats("factus-bog").Deleted, out, errs)
	}

	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acts, err := st.Actions(context.Background(), store.ActionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range acts {
		if a.Kind == "clear" && a.DocID == id && a.Reason == "customer NIT fixed in the ERP" && strings.HasPrefix(a.Outcome, "cleared:") {
			found = true
		}
	}
	if !found {
		t.Errorf("no clear recorded: %+v", acts)
	}

	if code, _, errs := runCmd("clear", "--config", cfgPath, "--db", db, "--account", "alegra-co", "--doc", "1",
		"--reason", "r", "--yes"); code != 2 || !strings.Contains(errs, "alegra") {
		t.Errorf("alegra: exit %d: %s", code, errs)
	}
}
