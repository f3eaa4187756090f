package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"emitop/config"
	"emitop/report"
	"emitop/store"
)

func init() {
	register("report", "the shift report: what happened to each account lately, from the history", runReport)
}

func runReport(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("report", stderr)
	cfgPath, dbPath := storeFlags(fs)
	since := fs.Duration("since", 12*time.Hour, "the shift: this long up to now")
	output := fs.String("o", "markdown", "markdown (for a chat message or a ticket) or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "markdown" && *output != "json" {
		return usagef("-o %q: want markdown or json", *output)
	}
	if *since <= 0 {
		return usagef("--since must be positive")
	}
	st, err := openHistory(*cfgPath, *dbPath, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	r, err := report.Build(context.Background(), st, now.Add(-*since), now)
	if err != nil {
		return err
	}
	if *output == "json" {
		return r.JSON(stdout)
	}
	return r.Markdown(stdout, time.Local)
}

// openHistory opens an existing history the way `emitop history` finds it: --db, else
// the configuration's store.path (the default path when there is no configuration).
func openHistory(cfgPath, dbPath string, stderr io.Writer) (*store.Store, error) {
	cfg, err := loadConfig(cfgPath, stderr)
	switch {
	case errors.Is(err, errNoConfig) && dbPath == "":
		cfg, err = config.Parse(nil, os.LookupEnv)
	case errors.Is(err, errNoConfig):
		cfg, err = &config.Config{}, nil
	}
	if err != nil {
		return nil, err
	}
	path := storePath(cfg, dbPath)
	if _, err := os.Stat(path); err != nil && !store.IsURL(path) {
		return nil, fmt.Errorf("no history at %s (emitop poll or the dashboard writes it)", path)
	}
	return store.Open(context.Background(), path)
}
