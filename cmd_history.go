package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/store"
)

func runHistory(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("history", stderr)
	cfgPath, dbPath := storeFlags(fs)
	account := fs.String("account", "", "only this account's events")
	doc := fs.String("doc", "", "only this document's events (its provider ID)")
	since := fs.Duration("since", 24*time.Hour, "only events this recent (0: all)")
	limit := fs.Int("limit", 200, "at most this many events")
	output := fs.String("o", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return usagef("-o %q: want text or json", *output)
	}
	if *since < 0 || *limit < 1 {
		return usagef("--since and --limit must be positive")
	}
	ctx := context.Background()
	cfg, st, err := openHistory(ctx, *cfgPath, *dbPath, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	if *account != "" {
		if err := knownAccount(ctx, st, cfg, *account); err != nil {
			return err
		}
	}
	f := store.EventFilter{Account: *account, DocID: *doc, Limit: *limit}
	if *since > 0 {
		f.Since = time.Now().Add(-*since)
	}
	events, err := st.Events(ctx, f)
	if err != nil {
		return err
	}
	if *output == "json" {
		return printEventsJSON(stdout, events)
	}
	return printEvents(stdout, events, zone(cfg))
}

// accountLister lists the accounts the history knows (*store.Store, on either engine).
type accountLister interface {
	Accounts(ctx context.Context) ([]model.Account, error)
}

// knownAccount refuses an account neither the configuration nor the history knows: a
// typo would otherwise read as an account with no events.
func knownAccount(ctx context.Context, st accountLister, cfg *config.Config, name string) error {
	var names []string
	for _, a := range cfg.Accounts {
		if a.Name == name {
			return nil
		}
		names = append(names, a.Name)
	}
	stored, err := st.Accounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range stored {
		if a.Name == name {
			return nil
		}
		if !slices.Contains(names, a.Name) {
			names = append(names, a.Name)
		}
	}
	slices.Sort(names)
	known := "the history has none yet"
	if len(names) > 0 {
		known = "known: " + model.Line(strings.Join(names, ", "), 200)
	}
	return usagef("unknown account %q (%s)", model.Line(name, 40), known)
}

// eventJSON is one event of `history -o json`: the raw response stays in the database.
type eventJSON struct {
	ID       int64          `json:"id"`
	At       time.Time      `json:"at"`
	Account  string         `json:"account"`
	Provider string         `json:"provider"`
	DocID    string         `json:"doc_id"`
	Number   string         `json:"number"`
	Kind     string         `json:"kind"`
	Status   model.Status   `json:"status"`
	Problem  *model.Problem `json:"problem"`
}

func printEventsJSON(w io.Writer, events []model.Event) error {
	out := make([]eventJSON, len(events))
	for i, e := range events {
		out[i] = eventJSON{ID: e.ID, At: e.At.UTC(), Account: e.Account, Provider: e.Provider, DocID: e.DocID,
			Number: e.Number, Kind: e.Kind, Status: e.Status, Problem: e.Problem}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// printEvents writes a table, times in loc with the zone named; every provider text is
// sanitized and cut to one line.
func printEvents(w io.Writer, events []model.Event, loc *time.Location) error {
	if len(events) == 0 {
		_, err := fmt.Fprintln(w, "no events")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACCOUNT\tDOCUMENT\tEVENT\tSTATUS\tCLASS\tCODE\tMESSAGE")
	for _, e := range events {
		number := e.Number
		if number == "" {
			number = e.DocID
		}
		class, code, msg := "", "", ""
		if p := e.Problem; p != nil {
			class, code, msg = string(p.Class), p.Code, p.Message
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.At.In(loc).Format("2006-01-02 15:04:05 MST"),
			model.Line(e.Account, 20), model.Line(number, 32), model.Line(e.Kind, 10), e.Status, class,
			model.Line(code, 28), model.Line(msg, 60))
	}
	return tw.Flush()
}
