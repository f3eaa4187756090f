package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/pace"
	"emitop/poller"
	"emitop/retry"
	"emitop/store"
)

// documents finds the documents the history knows (*store.Store, on either engine).
type documents interface {
	Document(ctx context.Context, account, docID string) (model.Document, error)
	DocumentByNumber(ctx context.Context, account, number string) (model.Document, error)
	Documents(ctx context.Context, f store.DocFilter) ([]model.Document, error)
}

// docList collects repeated --doc flags.
type docList []string

func (d *docList) String() string { return strings.Join(*d, ",") }
func (d *docList) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("empty document id")
	}
	*d = append(*d, v)
	return nil
}

func runRetry(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("retry", stderr)
	cfgPath, dbPath := storeFlags(fs)
	account := fs.String("account", "", "the account whose documents to resend")
	var docs docList
	fs.Var(&docs, "doc", "a document to resend: its number as the screens show it, or the provider's id (repeatable)")
	all := fs.Bool("all-rejected", false, "resend every rejected document the provider lists")
	dry := fs.Bool("dry-run", false, "show the plan and the requests, send nothing")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	force := fs.Bool("force", false, "resend documents whose verdict is fix or reconcile too (needs --reason)")
	reason := fs.String("reason", "", "why the resend is forced; recorded")
	output := fs.String("o", "", "output format: json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *account == "":
		return usagef("--account is required")
	case len(docs) == 0 && !*all || len(docs) > 0 && *all:
		return usagef("give --doc ID (repeatable) or --all-rejected")
	case *force && strings.TrimSpace(*reason) == "":
		return usagef("--force requires --reason")
	case *reason != "" && !*force:
		return usagef("--reason goes with --force")
	case *output != "" && *output != "json":
		return usagef("unknown output format %q (want json)", *output)
	}
	if err := unconfirmed(stdin, *dry, *yes, "resend"); err != nil {
		return err
	}
	opt := retry.Options{Operator: "local", Force: *force, Reason: *reason}
	if *output == "" && !*dry {
		opt.OnProgress = func(p model.RetryProgress) {
			if p.Result != nil {
				fmt.Fprintf(stderr, "[%d/%d] %s %s\n", p.Done, p.Total, model.Line(p.Result.Doc.ID, 80), p.Result.Outcome)
			}
		}
	}
	var scope io.Writer
	if *output == "" {
		scope = stdout
	}
	ctx, run, err := startAccountRun(*cfgPath, *dbPath, *account, opt, scope, stderr)
	if err != nil {
		return err
	}
	defer run.Close()
	acc, r, where := run.acc, run.r, run.st.Location()
	waiting := func(d time.Duration, err error) {
		fmt.Fprintf(stderr, "emitop: %s; waiting %s as the provider asks\n", model.Line(err.Error(), 200), d.Round(time.Second))
	}
	var targets []retry.Target
	var reads int
	if run.here {
		targets, reads, err = retryTargets(ctx, run.c, run.st, *acc, docs, *all, waiting)
	} else {
		targets, err = storedTargets(ctx, run.st, *acc, docs, *all)
	}
	var cut *poller.ListingCut
	if errors.As(err, &cut) {
		fmt.Fprintf(stderr, "emitop: %s: only the documents listed are planned\n", model.Line(cut.Error(), 300))
	} else if err != nil {
		return err
	}
	plan := r.Plan(targets)
	if *dry {
		if *output == "json" {
			return writeJSON(stdout, planJSON(plan, reads, where))
		}
		printPlan(stdout, plan, reads, true)
		fmt.Fprintln(stdout, "dry run: nothing sent")
		return nil
	}
	if !*yes {
		printPlan(stdout, plan, reads, false)
		if plan.Resends() == 0 {
			fmt.Fprintln(stdout, "nothing to resend")
		} else {
			fmt.Fprintf(stdout, "Resend %d document(s) of %s? [y/N] ", plan.Resends(), acc.Name)
			line, _ := bufio.NewReader(stdin).ReadString('\n')
			if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
				fmt.Fprintln(stdout, "nothing sent")
				return exitError{1}
			}
		}
	}
	var rep model.RetryReport
	if run.here {
		rep, err = r.Run(ctx, plan)
	} else {
		rep, err = run.m.Elsewhere(ctx, plan, opt)
	}
	if err != nil {
		return err
	}
	if *output == "json" {
		if err := writeJSON(stdout, reportJSON(rep, where)); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if !rep.OK() {
		return exitError{1}
	}
	return nil
}

// retryTargets are the documents to plan for. --all-rejected lists the provider's open
// documents (every page, up to the listing's bounds: a *poller.ListingCut comes back with
// the targets listed; a 429 or 503 with a stated wait is waited out, and waiting told)
// and keeps the rejected ones. --doc takes each document as the store last saw it, by the
// provider's id or by the number the screens show, and reads from the provider only the
// ones the store does not know (by id).
// reads counts the provider requests made to plan.
func retryTargets(ctx context.Context, c *poller.Client, st documents, acc config.Account, docs []string, all bool, waiting func(time.Duration, error)) ([]retry.Target, int, error) {
	var out []retry.Target
	if all {
		items, err := poller.OpenDocumentsWaiting(ctx, c, pace.Write, waiting)
		var cut *poller.ListingCut
		if err != nil && !errors.As(err, &cut) {
			return nil, 0, fmt.Errorf("list %s: %w", acc.Name, err)
		}
		for _, it := range items {
			if it.Doc.Status != model.StatusRejected {
				continue
			}
			d := it.Doc
			d.Problem = it.Problem
			if known, err := st.Document(ctx, acc.Name, d.ID); err == nil {
				d.Attempts = known.Attempts
			}
			out = append(out, retry.Target{Doc: d})
		}
		if cut != nil {
			return out, -1, cut
		}
		return out, -1, nil
	}
	reads := 0
	seen := map[string]bool{}
	for _, id := range docs {
		if seen[id] {
			continue
		}
		seen[id] = true
		known, err := st.Document(ctx, acc.Name, id)
		if errors.Is(err, store.ErrNotFound) {
			known, err = st.DocumentByNumber(ctx, acc.Name, id)
		}
		if err == nil {
			if seen[known.ID] && known.ID != id {
				continue // named twice: once by id, once by number
			}
			seen[known.ID] = true
			out = append(out, retry.Target{Doc: known})
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, reads, err
		}
		it, err := poller.ReadDocument(ctx, c, pace.Write, id)
		switch {
		case errors.Is(err, poller.ErrNoRead):
			out = append(out, retry.Target{Doc: model.Document{Account: acc.Name, Provider: acc.Provider, ID: id, Status: model.StatusUnknown}})
			continue
		case err != nil:
			return nil, reads, fmt.Errorf("read %s: %w", model.Line(id, 80), err)
		}
		reads++
		d := it.Doc
		d.Problem = it.Problem
		out = append(out, retry.Target{Doc: d})
	}
	return out, reads, nil
}

// storedTargets are the documents to plan for when another process polls the account:
// as the store last saw them (that process's polls write them), with no request to the
// provider, which would spend the account's budget outside its governor. --all-rejected
// takes every document the store holds rejected; --doc one the store does not know is
// planned with its status unknown, and read by the process that polls the account.
func storedTargets(ctx context.Context, st documents, acc config.Account, docs []string, all bool) ([]retry.Target, error) {
	var out []retry.Target
	if all {
		known, err := st.Documents(ctx, store.DocFilter{Account: acc.Name, Statuses: []model.Status{model.StatusRejected}, Limit: 10000})
		if err != nil {
			return nil, err
		}
		for _, d := range known {
			out = append(out, retry.Target{Doc: d})
		}
		return out, nil
	}
	seen := map[string]bool{}
	for _, id := range docs {
		known, err := st.Document(ctx, acc.Name, id)
		if errors.Is(err, store.ErrNotFound) {
			known, err = st.DocumentByNumber(ctx, acc.Name, id)
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
			known = model.Document{Account: acc.Name, Provider: acc.Provider, ID: id, Status: model.StatusUnknown}
		case err != nil:
			return nil, err
		}
		if !seen[known.ID] {
			seen[known.ID] = true
			out = append(out, retry.Target{Doc: known})
		}
	}
	return out, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func lastProblem(p *model.Problem) string {
	if p == nil {
		return "none recorded"
	}
	code := p.Code
	if code == "" {
		code = string(p.Class)
	}
	return model.Line(code+" "+p.Message, 120)
}

// printPlan shows what a batch will do; with requests, every request it will make.
func printPlan(w io.Writer, p model.RetryPlan, reads int, requests bool) {
	fmt.Fprintf(w, "plan for %s (%s): %d document(s), %d to resend, %d request(s), about %s at the current budget\n",
		p.Account, p.Provider, len(p.Items), p.Resends(), p.Requests, p.ETA.Round(100*time.Millisecond))
	switch {
	case reads < 0:
		fmt.Fprintln(w, "planned from the provider's listing of open documents")
	case reads > 0:
		fmt.Fprintf(w, "planned from the store, and %d read(s) of documents the store did not know\n", reads)
	default:
		fmt.Fprintln(w, "planned from the store: no request made")
	}
	if p.Force {
		fmt.Fprintf(w, "forced, reason: %s\n", model.Line(p.Reason, 200))
	}
	for _, it := range p.Items {
		v := string(it.Verdict)
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(w, "  %s  %s  verdict %s  attempts %d  last: %s\n", model.Line(it.Doc.ID, 60),
			model.Line(it.Doc.Number, 40), v, it.Doc.Attempts, lastProblem(it.Doc.Problem))
		action := "skip"
		if it.Resend {
			action = "resend"
		}
		fmt.Fprintf(w, "      %s: %s\n", action, model.Line(reasonText(it.Why), 0))
		if !requests {
			continue
		}
		// A request's path and body carry the provider's own text (a stored DTE, a
		// reference code): shown, never obeyed by the terminal.
		for _, rq := range it.Requests {
			fmt.Fprintf(w, "      %s %s  %s\n", model.Line(rq.Method, 16), model.Line(rq.URL, 0), model.Line(strings.Join(rq.Header, "  "), 0))
			if rq.Body != "" {
				fmt.Fprintf(w, "        body: %s\n", model.Line(rq.Body, 0))
			}
		}
	}
}

// reasonText is the engine's reason as the command line says it: the fact, and for a
// document the operator may force, the flags that do it.
func reasonText(why model.RetryReason) string {
	if why.Forcible() {
		return why.String() + " (--force --reason to resend anyway)"
	}
	return why.String()
}

// detailText is how a document ended as the command line says it: for one the policy
// skipped, its reason as the command line words it.
func detailText(res model.RetryResult) string {
	if res.Why.Kind != 0 {
		return reasonText(res.Why)
	}
	return res.Detail
}

// planOut is `retry --dry-run -o json`: the plan, where its leases are, and how its
// documents were found.
type planOut struct {
	Store      string            `json:"store"` // where the leases and the ledger are: see storeScope
	Account    string            `json:"account"`
	Provider   string            `json:"provider"`
	DryRun     bool              `json:"dry_run"`
	PlanReads  int               `json:"plan_reads"` // -1: planned from the provider's listing
	Requests   int               `json:"requests"`
	ETASeconds float64           `json:"eta_seconds"`
	Documents  []model.RetryItem `json:"documents"`
}

func planJSON(p model.RetryPlan, reads int, where store.Location) planOut {
	out := planOut{Store: where.String(), Account: p.Account, Provider: p.Provider, DryRun: true, PlanReads: reads,
		Requests: p.Requests, ETASeconds: p.ETA.Seconds(), Documents: p.Items}
	if out.Documents == nil {
		out.Documents = []model.RetryItem{}
	}
	return out
}

// reportOut is `retry -o json`: what the batch did, with its totals.
type reportOut struct {
	Store     string              `json:"store"`
	Account   string              `json:"account"`
	Documents []model.RetryResult `json:"documents"`
	Totals    map[string]int      `json:"totals"`
	Requests  int                 `json:"requests"`
	Cancelled bool                `json:"cancelled"`
	OK        bool                `json:"ok"`
}

func reportJSON(rep model.RetryReport, where store.Location) reportOut {
	out := reportOut{Store: where.String(), Account: rep.Account, Documents: rep.Results, Totals: map[string]int{},
		Requests: rep.Requests, Cancelled: rep.Cancelled, OK: rep.OK()}
	if out.Documents == nil {
		out.Documents = []model.RetryResult{}
	}
	for _, o := range model.Outcomes {
		out.Totals[string(o)] = rep.Count(o)
	}
	return out
}

func printReport(w io.Writer, rep model.RetryReport) {
	for _, r := range rep.Results {
		v := string(r.Verdict)
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(w, "%-8s  %s  %s  %s  %s\n", r.Outcome, model.Line(r.Doc.ID, 60), model.Line(r.Doc.Number, 40), v, detailText(r))
	}
	var parts []string
	for _, o := range model.Outcomes {
		parts = append(parts, fmt.Sprintf("%d %s", rep.Count(o), o))
	}
	suffix := ""
	if rep.Cancelled {
		suffix = " (cancelled)"
	}
	fmt.Fprintf(w, "%s: %s; %d request(s) in %s%s\n", rep.Account, strings.Join(parts, ", "), rep.Requests,
		rep.Elapsed.Round(10*time.Millisecond), suffix)
}
