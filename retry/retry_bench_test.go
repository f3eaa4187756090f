package retry

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"emitop/config"
	"emitop/model"
	"emitop/pace"
	"emitop/poller"
	"emitop/sandbox"
	"emitop/store"
)

// retryBench is one account of a storm-scenario sandbox, its limits scaled down, whose
// rejected documents (as `retry --all-rejected` lists them) are resent pass after pass
// by engines that share a Memory, as one process's batches do: each pass retries what the
// one before did not get accepted (documents the provider keeps rejecting for an outside
// cause, over and over).
type retryBench struct {
	account string
	limits  []pace.Limit // the windows the sandbox enforces and the governor knows
	sandbox sandbox.Limits
	faults  sandbox.Faults
	timeout time.Duration // the account's; zero keeps the sandbox's 30 s
	// documents each account starts with; zero keeps the scenario's 30
	documents int
}

// passes is how many batches one iteration runs over the same documents.
const passes = 8

// run reports, over its last iteration: requests/doc, every request the account's
// sandbox saw from the engine (the listing that found the documents, status reads,
// pages of the listing of rejected documents, resends) per document resent;
// over/bound-reserve and over/bound-full, the time the passes took over the least time
// the requests the windows carried could take (the engine's, and another client's
// spending the same budget) against windows that keep the 10 % reserve emitop never
// spends (the pace it aims at), or against the whole limits; and, which must be 0,
// duplicates (emissions of documents already accepted) and 429s. Run it with
// -benchtime=1x: one iteration takes seconds.
func (rb retryBench) run(b *testing.B) {
	var overReserve, overFull, perDoc, duplicates, refused float64
	for b.Loop() {
		b.StopTimer()
		sb, err := sandbox.New(sandbox.Options{Scenario: "storm", Seed: 7, NoFaults: true, Limits: rb.sandbox, Documents: rb.documents})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sb.Start("127.0.0.1:0"); err != nil {
			b.Fatal(err)
		}
		sb.SetFaults(rb.account, rb.faults)
		cfg, err := config.Parse([]byte(sb.ConfigTOML()), func(string) (string, bool) { return "", false }, poller.Providers())
		if err != nil {
			b.Fatal(err)
		}
		var acc config.Account
		for _, a := range cfg.Accounts {
			if a.Name == rb.account {
				acc = a
			}
		}
		if rb.timeout > 0 {
			acc.Timeout = rb.timeout
		}
		st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "h.db"))
		if err != nil {
			b.Fatal(err)
		}
		c, err := poller.NewClient(acc, poller.ClientOptions{Version: "bench", Governor: pace.NewGovernor(rb.limits, 0.1, nil)})
		if err != nil {
			b.Fatal(err)
		}
		before := sb.AccountStats(rb.account)
		b.StartTimer()
		start := time.Now()
		items, err := poller.OpenDocuments(context.Background(), c, pace.Write)
		if err != nil {
			b.Fatal(err)
		}
		var targets []Target
		for _, it := range items {
			if it.Doc.Status == model.StatusRejected {
				targets = append(targets, Target{Doc: it.Document()})
			}
		}
		memory := NewMemory()
		resent := 0
		for range passes {
			r, err := New(c, st, Options{Memory: memory})
			if err != nil {
				b.Fatal(err)
			}
			rep, err := r.Run(context.Background(), r.Plan(targets))
			if err != nil {
				b.Fatal(err)
			}
			// The next batch retries what is not accepted, as an operator would.
			targets = targets[:0]
			for _, res := range rep.Results {
				if res.Sent {
					resent++
				}
				if res.Outcome != model.OutcomeAccepted {
					targets = append(targets, Target{Doc: res.Doc})
				}
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		stats := sb.AccountStats(rb.account)
		if resent == 0 {
			b.Fatalf("nothing resent: stats %+v", stats)
		}
		ours := stats.Requests - before.Requests
		carried := ours + stats.Production - before.Production
		overReserve = elapsed.Seconds() / pace.DrainBound(rb.limits, 0.1, carried).Seconds()
		overFull = elapsed.Seconds() / pace.DrainBound(rb.limits, 0, carried).Seconds()
		perDoc = float64(ours) / float64(resent)
		duplicates, refused = float64(stats.DuplicateEmissions), float64(stats.RateLimited)
		b.Logf("%d requests for %d resends (%d by the other client) in %v; bounds %v (reserve kept), %v (whole limits); %d duplicates, %d 429s",
			ours, resent, carried-ours, elapsed.Round(time.Millisecond), pace.DrainBound(rb.limits, 0.1, carried),
			pace.DrainBound(rb.limits, 0, carried), stats.DuplicateEmissions, stats.RateLimited)
		if stats.DuplicateEmissions != 0 || stats.RateLimited != 0 {
			b.Errorf("%d duplicate emissions, %d 429s", stats.DuplicateEmissions, stats.RateLimited)
		}
		st.Close()
		sb.Close()
		b.StartTimer()
	}
	b.ReportMetric(overReserve, "over/bound-reserve")
	b.ReportMetric(overFull, "over/bound-full")
	b.ReportMetric(perDoc, "requests/doc")
	b.ReportMetric(duplicates, "duplicates")
	b.ReportMetric(refused, "429s")
}

// BenchmarkRetrySVDTE resends against sv-dte's three sliding windows, scaled down (3/100
// ms, 20/1 s, 100/6 s). A DTE is resent from the stored DTE its read returns: the first
// pass reads each; later passes confirm a page of them at once with the listing of
// rejected DTEs, which shows the same emission the engine sent.
func BenchmarkRetrySVDTE(b *testing.B) {
	limits := []pace.Limit{{Name: "short", Max: 3, Per: 100 * time.Millisecond},
		{Name: "medium", Max: 20, Per: time.Second}, {Name: "long", Max: 100, Per: 6 * time.Second}}
	var throttlers []sandbox.Throttler
	for _, l := range limits {
		throttlers = append(throttlers, sandbox.Throttler{Name: l.Name, Limit: l.Max, TTL: l.Per})
	}
	retryBench{account: "sv-main", limits: limits, sandbox: sandbox.Limits{SVDTE: throttlers}}.run(b)
}

// BenchmarkRetryCertifactu is BenchmarkRetrySVDTE's twin on Certifactu's one window,
// scaled down (20 per second, X-RateLimit-* with an epoch reset; the account's timeout 1
// s), on an account of 240 invoices: 15 % of resends are committed and answered 500 (each
// then read, and left open until its deadline when the read says rejected), and another
// client spends the same budget meanwhile (up to 5 requests a second, whenever the window
// has room).
func BenchmarkRetryCertifactu(b *testing.B) {
	limit := sandbox.Rate{Limit: 20, Period: time.Second}
	retryBench{account: "cf-madrid", limits: []pace.Limit{{Max: limit.Limit, Per: limit.Period}},
		sandbox: sandbox.Limits{Certifactu: limit},
		faults:  sandbox.Faults{ServerErrorAfterCommit: 0.15, ProductionRate: 5}, timeout: time.Second, documents: 240}.run(b)
}
