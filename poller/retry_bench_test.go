package poller

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"emitop/config"
	"emitop/sandbox"
	"emitop/store"
)

// BenchmarkRetrySVDTE resends batches against sv-dte's three sliding windows, scaled down
// (3/100 ms, 20/1 s, 100/6 s), and compares the time taken with the least time the
// requests made could take: over/bound-reserve is against windows that keep the 10 %
// reserve emitop never spends (the pace it aims at), over/bound-full against the whole
// limits. requests/doc counts every request the sandbox saw (listing, status reads,
// resends) per document resent. Run it with -benchtime=1x: one iteration takes seconds.
func BenchmarkRetrySVDTE(b *testing.B) {
	limits := []Limit{{Name: "short", Max: 3, Per: 100 * time.Millisecond},
		{Name: "medium", Max: 20, Per: time.Second}, {Name: "long", Max: 100, Per: 6 * time.Second}}
	var throttlers []sandbox.Throttler
	for _, l := range limits {
		throttlers = append(throttlers, sandbox.Throttler{Name: l.Name, Limit: l.Max, TTL: l.Per})
	}
	const passes = 8
	var overReserve, overFull, perDoc float64
	for b.Loop() {
		b.StopTimer()
		sb, err := sandbox.New(sandbox.Options{Scenario: "storm", Seed: 7, NoFaults: true, Limits: sandbox.Limits{SVDTE: throttlers}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sb.Start("127.0.0.1:0"); err != nil {
			b.Fatal(err)
		}
		cfg, err := config.Parse([]byte(sb.ConfigTOML()), func(string) (string, bool) { return "", false }, Providers())
		if err != nil {
			b.Fatal(err)
		}
		var acc config.Account
		for _, a := range cfg.Accounts {
			if a.Name == "sv-main" {
				acc = a
			}
		}
		st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "h.db"))
		if err != nil {
			b.Fatal(err)
		}
		c, err := NewClient(acc, ClientOptions{Version: "bench", Governor: NewGovernorLimits(limits, 0.1, nil)})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		items, err := OpenDocuments(context.Background(), c, Write)
		if err != nil {
			b.Fatal(err)
		}
		var targets []Target
		for _, it := range items {
			targets = append(targets, Target{Doc: docWith(it)})
		}
		resent := 0
		for range passes {
			r, err := NewRetrier(c, st, RetryOptions{})
			if err != nil {
				b.Fatal(err)
			}
			rep, err := r.Run(context.Background(), r.Plan(targets))
			if err != nil {
				b.Fatal(err)
			}
			for _, res := range rep.Results {
				if res.Sent {
					resent++
				}
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		stats := sb.AccountStats("sv-main")
		if stats.RateLimited != 0 || stats.DuplicateEmissions != 0 || resent == 0 {
			b.Fatalf("%d resent, stats %+v", resent, stats)
		}
		n := stats.Requests
		overReserve = elapsed.Seconds() / DrainBound(limits, 0.1, n).Seconds()
		overFull = elapsed.Seconds() / DrainBound(limits, 0, n).Seconds()
		perDoc = float64(n) / float64(resent)
		b.Logf("%d requests for %d resends in %v; bounds %v (reserve kept), %v (whole limits)",
			n, resent, elapsed.Round(time.Millisecond), DrainBound(limits, 0.1, n), DrainBound(limits, 0, n))
		st.Close()
		sb.Close()
		b.StartTimer()
	}
	b.ReportMetric(overReserve, "over/bound-reserve")
	b.ReportMetric(overFull, "over/bound-full")
	b.ReportMetric(perDoc, "requests/doc")
}
