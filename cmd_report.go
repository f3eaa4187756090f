package main

import (
	"context"
	"io"
	"time"

	"emitop/report"
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
	cfg, st, err := openHistory(context.Background(), *cfgPath, *dbPath, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	r, err := report.Build(context.Background(), st, now.Add(-*since), now, zone(cfg))
	if err != nil {
		return err
	}
	if *output == "json" {
		return r.JSON(stdout)
	}
	return r.Markdown(stdout, zone(cfg))
}
