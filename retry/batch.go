package retry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"emitop/model"
	"emitop/poller"
	"emitop/store"
)

// Batch retries documents of several accounts at once, as the dashboard asks: each
// account's documents through that account's own engine and client (its own governor and
// budget), side by side, so one account's slow windows hold up none of the others. Each
// sent document is recorded by its engine; the batch records, per account, the documents
// it did not send and a summary.
type Batch struct {
	// Client is the client of a polled account, nil for an account that is not polled:
	// sharing it shares the account's governor with the poller.
	Client func(account string) *poller.Client
	Ledger Ledger
	// Retried, when set, is told of each account's finished report (metrics).
	Retried func(model.RetryReport)
	// Memory is what the batches remember from one to the next (see Memory); nil
	// remembers nothing.
	Memory *Memory
	// Fleet, when set, is the fleet of processes sharing the store (package fleet): an
	// account's part runs here only while this process holds the account's poll lease,
	// and is carried out by the process that does otherwise. nil: every part runs here.
	Fleet Fleet
}

// Fleet is how a batch reaches the process that polls an account, so that the account's
// budget is spent under one governor wherever the retry was asked for.
type Fleet interface {
	// Holding is nil while this process holds the account's poll lease, and why not
	// otherwise; every emission's fence asks it again.
	Holding(account string) error
	// Elsewhere carries out one account's plan in the process that holds the account's
	// poll lease, telling opt.OnProgress as the engine would, and returns its report.
	Elsewhere(ctx context.Context, plan model.RetryPlan, opt Options) (model.RetryReport, error)
}

// Plan plans each account's documents with that account's engine, on its client (so
// the ETA is at the account's current budget); the accounts run side by side, so the
// batch takes as long as its slowest account. opt says who asks and whether to force.
func (b Batch) Plan(docs []model.Document, opt Options) (model.RetryPlan, error) {
	opt.Reason = strings.TrimSpace(opt.Reason)
	if opt.Force && opt.Reason == "" {
		return model.RetryPlan{}, errors.New("forcing a resend requires a reason")
	}
	out := model.RetryPlan{Force: opt.Force, Reason: opt.Reason, Operator: opt.Operator, Fingerprint: opt.Fingerprint}
	for _, part := range byAccount(docs, func(d model.Document) string { return d.Account }) {
		r, err := b.engine(part.account, opt)
		if err != nil {
			return model.RetryPlan{}, err
		}
		targets := make([]Target, len(part.items))
		for i, d := range part.items {
			targets[i] = Target{Doc: d}
		}
		p := r.Plan(targets)
		out.Items = append(out.Items, p.Items...)
		out.Requests += p.Requests
		out.ETA = max(out.ETA, p.ETA)
	}
	return out, nil
}

// part is one account's share of a batch, in the order of the batch.
type part[T any] struct {
	account string
	items   []T
}

// byAccount splits xs by account, the accounts in the order of their first item.
func byAccount[T any](xs []T, account func(T) string) []part[T] {
	var out []part[T]
	at := map[string]int{}
	for _, x := range xs {
		a := account(x)
		i, ok := at[a]
		if !ok {
			i = len(out)
			at[a] = i
			out = append(out, part[T]{account: a})
		}
		out[i].items = append(out[i].items, x)
	}
	return out
}

func (b Batch) engine(account string, opt Options) (*Retrier, error) {
	c := b.Client(account)
	if c == nil {
		return nil, fmt.Errorf("no account %q is polled", model.Line(account, 40))
	}
	opt.Memory = b.Memory
	return New(c, b.Ledger, opt)
}

// Run carries out a plan Plan made: every account's part at once. Progress counts every
// document of the batch (the documents the plan skips are reported at the start) and
// must not block. Cancelling ctx stops each account before its next document.
func (b Batch) Run(ctx context.Context, plan model.RetryPlan, progress func(model.RetryProgress)) (model.RetryReport, error) {
	start := time.Now()
	opt := Options{Operator: plan.Operator, Fingerprint: plan.Fingerprint, Force: plan.Force, Reason: plan.Reason}
	parts := byAccount(plan.Items, func(it model.RetryItem) string { return it.Doc.Account })
	n := len(parts)
	var (
		mu      sync.Mutex
		done    int
		etas    = make([]time.Duration, n)
		current = make([]string, n)
	)
	report := func(i int, pr model.RetryProgress, res *model.RetryResult) {
		etas[i], current[i] = pr.ETA, pr.Current
		up := model.RetryProgress{Done: done, Total: len(plan.Items), Result: res, ETA: slices.Max(etas)}
		for _, c := range current {
			if c != "" {
				up.Current = c
				break
			}
		}
		progress(up)
	}
	rs := make([]*Retrier, n)
	opts := make([]Options, n)
	plans := make([]model.RetryPlan, n)
	for i, p := range parts {
		plans[i] = model.RetryPlan{Account: p.account, Items: p.items, Force: plan.Force, Reason: plan.Reason,
			Operator: plan.Operator, Fingerprint: plan.Fingerprint}
		o := opt
		o.OnProgress = func(pr model.RetryProgress) {
			mu.Lock()
			defer mu.Unlock()
			if pr.Result == nil {
				for _, it := range p.items {
					if !it.Resend {
						done++
						report(i, pr, &model.RetryResult{Doc: it.Doc, Outcome: model.OutcomeSkipped, ByPolicy: true,
							Verdict: it.Verdict, Why: it.Why, Detail: it.Why.String()})
					}
				}
				report(i, pr, nil)
				return
			}
			done++
			res := *pr.Result
			report(i, pr, &res)
		}
		opts[i] = o
		if b.Fleet != nil && b.Fleet.Holding(p.account) != nil {
			continue // another process polls it: that one carries it out
		}
		if b.Fleet != nil {
			o.Holding = func() error { return b.Fleet.Holding(p.account) }
		}
		r, err := b.engine(p.account, o)
		if err != nil {
			return model.RetryReport{}, err
		}
		rs[i] = r
	}
	reports := make([]model.RetryReport, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, r := range rs {
		if r == nil {
			wg.Go(func() { reports[i], errs[i] = b.Fleet.Elsewhere(ctx, plans[i], opts[i]) })
			continue
		}
		wg.Go(func() { reports[i], errs[i] = r.Run(ctx, plans[i]) })
	}
	wg.Wait()

	out := model.RetryReport{Elapsed: time.Since(start)}
	var ops []store.Op
	for i, rep := range reports {
		if b.Retried != nil && rs[i] != nil { // a part run elsewhere is counted and recorded there
			b.Retried(rep)
		}
		out.Requests += rep.Requests
		out.Cancelled = out.Cancelled || rep.Cancelled
		out.Results = append(out.Results, rep.Results...)
		if rs[i] != nil {
			ops = append(ops, batchRecord(opt, parts[i].account, rep)...)
		}
	}
	net := context.WithoutCancel(ctx)
	if err := b.Ledger.Enqueue(net, ops...); err != nil {
		errs = append(errs, fmt.Errorf("record the retry: %w", err))
	} else if err := b.Ledger.Flush(net); err != nil {
		errs = append(errs, fmt.Errorf("record the retry: %w", err))
	}
	return out, errors.Join(errs...)
}

// batchRecord is what the action log learns of one account's batch beyond what the
// engine records of each sent document: each document not sent, and a summary.
func batchRecord(opt Options, account string, rep model.RetryReport) []store.Op {
	act := func(docID, outcome string) store.Op {
		return store.RecordAction(model.Action{Operator: opt.Operator, Fingerprint: opt.Fingerprint,
			Kind: model.RetryAction(opt.Force), Account: account, DocID: docID, Reason: opt.Reason, Outcome: outcome})
	}
	var ops []store.Op
	parts := make([]string, len(model.Outcomes))
	for i, o := range model.Outcomes {
		parts[i] = fmt.Sprintf("%d %s", rep.Count(o), o)
	}
	for _, r := range rep.Results {
		if !r.Sent {
			ops = append(ops, act(r.Doc.ID, string(r.Outcome)+": "+r.Detail))
		}
	}
	summary := fmt.Sprintf("batch of %d: %s", len(rep.Results), strings.Join(parts, ", "))
	if rep.Cancelled {
		summary += " (cancelled)"
	}
	return append(ops, act("", summary))
}
