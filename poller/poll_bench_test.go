package poller

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"emitop/config"
	"emitop/sandbox"
)

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPollCycle measures the CPU one poll of 100 accounts costs: the sandbox's 10
// accounts, each polled by 10 configured accounts of their own (own name, client,
// governor, documents in the store), over real HTTP on loopback, with the sandbox
// serving in the same process. Limits are lifted so that no cycle waits for a window;
// each cycle ends with a Flush, so the store's writes are inside it. cpu-ms/cycle is the
// process's CPU time (getrusage), the sandbox's handlers included; requests/cycle says
// how much HTTP that is.
func BenchmarkPollCycle(b *testing.B) {
	huge := sandbox.Rate{Limit: 1 << 30, Period: time.Minute}
	limits := sandbox.Limits{Alegra: huge, Certifactu: huge, Factus: huge, AlforseLogin: huge,
		SVDTE: []sandbox.Throttler{{Name: "short", Limit: 1 << 30, TTL: time.Second},
			{Name: "medium", Limit: 1 << 30, TTL: 10 * time.Second}, {Name: "long", Limit: 1 << 30, TTL: time.Minute}}}
	_, base := sandboxAccounts(b, sandbox.Options{Scenario: "calm", Seed: 1, NoFaults: true, Limits: limits})
	var accounts []config.Account
	for k := range 10 {
		for _, a := range base {
			a.Name = fmt.Sprintf("%s-%d", a.Name, k)
			accounts = append(accounts, a)
		}
	}
	st := openStore(b)
	var errs errorLog
	p := newTestPoller(b, accounts, st, &errs)
	ctx := context.Background()
	p.PollOnce(ctx) // logins, and every document's first sighting
	if err := st.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if e := errs.list(); len(e) > 0 {
		b.Fatalf("errors: %v", e[0])
	}
	var requests atomic.Int64
	p.opts.OnError = errs.add
	for _, a := range p.accounts {
		a.client.trace = func(x Exchange) { requests.Add(1); p.logRequest(x) }
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime(b)
	for b.Loop() {
		snap := p.PollOnce(ctx)
		if err := st.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if len(snap.Accounts) != 100 {
			b.Fatalf("%d accounts", len(snap.Accounts))
		}
	}
	used := cpuTime(b) - start
	b.StopTimer()
	if e := errs.list(); len(e) > 0 {
		b.Fatalf("errors: %v", e[0])
	}
	b.ReportMetric(float64(used.Microseconds())/1000/float64(b.N), "cpu-ms/cycle")
	b.ReportMetric(float64(requests.Load())/float64(b.N), "requests/cycle")
}
