package serve

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"emitop/config"
)

// watcher reads one session's output and reports when the marker it is told to look for
// appears; it keeps only a short tail, so its own memory stays flat.
type watcher struct {
	mu     sync.Mutex
	want   []byte
	seen   chan time.Time
	notify bool
}

func newWatcher(sess *gossh.Session) (*watcher, error) {
	out, err := sess.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w := &watcher{seen: make(chan time.Time, 1)}
	go func() {
		buf := make([]byte, 16<<10)
		var tail []byte
		for {
			n, err := out.Read(buf)
			if n > 0 {
				tail = append(tail, buf[:n]...)
				w.mu.Lock()
				if w.notify && bytes.Contains(tail, w.want) {
					w.notify = false
					w.seen <- time.Now()
				}
				w.mu.Unlock()
				if len(tail) > 256 {
					tail = append(tail[:0], tail[len(tail)-256:]...)
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return w, nil
}

// expect makes the watcher look for s from now on.
func (w *watcher) expect(s string) {
	w.mu.Lock()
	w.want, w.notify = []byte(s), true
	w.mu.Unlock()
}

// marker is the i-th account name: six letters, no two alike in a row, and each differing
// from the (i-1)-th at every position, so a renderer that redraws only changed cells still
// writes it whole.
func marker(i int) string {
	b := make([]byte, 6)
	for j := range b {
		b[j] = byte('a' + (i*7+j*3)%26)
	}
	return string(b)
}

// rssKB is the process's resident set size in KiB, 0 where /proc is missing.
func rssKB() int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkFanout serves n concurrent sessions (120×36 terminals) and measures the memory
// each costs (heap and RSS growth over n; the SSH clients run in the same process, so both
// include the client side) and, per op, the latency from Publish until the SSH client of
// the last of the n sessions has read the frame with the new snapshot: the hub's fan-out,
// every session's update, render and write, the SSH transport both ways (the clients share
// the machine's cores with the server). 50 sessions is the target (≤ 10 MB a session,
// ≤ 5 ms). The baseline, measured in the same benchmark after the server under test has
// stopped, is the same server drawing with Bubble Tea's own renderer on its frame clock
// (120 fps); "vs-frame-clock" is the ratio of the two medians.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			got := fanout(b, n, false)
			base := fanout(b, n, true)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(got.p(50)), "p50-ms")
			b.ReportMetric(ms(got.p(90)), "p90-ms")
			b.ReportMetric(ms(got.p(100)), "max-ms")
			b.ReportMetric(got.heapMB, "heap-MB/session")
			b.ReportMetric(got.rssMB, "rss-MB/session")
			b.ReportMetric(ms(base.p(50)), "frame-clock-p50-ms")
			b.ReportMetric(ms(base.p(100)), "frame-clock-max-ms")
			b.ReportMetric(float64(got.p(50))/float64(base.p(50)), "vs-frame-clock")
		})
	}
}

// fanned is one fanout measurement: the sorted latencies and the memory per session.
type fanned struct {
	lat           []time.Duration
	heapMB, rssMB float64
}

// p is the q-th percentile of the latencies.
func (f fanned) p(q int) time.Duration { return f.lat[min(len(f.lat)*q/100, len(f.lat)-1)] }

// fanout serves n sessions (drawn by Bubble Tea's renderer when frameClock), publishes
// b.N snapshots, and stops the server before it returns.
func fanout(b *testing.B, n int, frameClock bool) fanned {
	b.StopTimer()
	var ops []config.Operator
	var keys []gossh.Signer
	for i := range n {
		k, line := newKey(b)
		ops = append(ops, config.Operator{Name: fmt.Sprintf("op%02d", i), Role: config.RoleOperator, Keys: []string{line}})
		keys = append(keys, k)
	}
	r := startRig(b, ops, func(o *Options) { o.frameClock = frameClock })
	r.hub.Publish(snapshotWith(marker(0)))

	heap0, rss0 := heapInuse(), rssKB()
	watchers := make([]*watcher, n)
	var clients []*gossh.Client
	for i := range n {
		c, err := r.dial(keys[i])
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		sess, err := c.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		if err := sess.RequestPty("xterm-256color", 36, 120, gossh.TerminalModes{}); err != nil {
			b.Fatal(err)
		}
		if _, err := sess.StdinPipe(); err != nil {
			b.Fatal(err)
		}
		if watchers[i], err = newWatcher(sess); err != nil {
			b.Fatal(err)
		}
		watchers[i].expect(marker(0))
		if err := sess.Shell(); err != nil {
			b.Fatal(err)
		}
	}
	for i, w := range watchers {
		select {
		case <-w.seen:
		case <-time.After(wait):
			b.Fatalf("session %d never drew the first snapshot", i)
		}
	}
	heap1, rss1 := heapInuse(), rssKB()

	lat := make([]time.Duration, 0, b.N)
	b.StartTimer()
	for i := 1; i <= b.N; i++ {
		m := marker(i)
		for _, w := range watchers {
			w.expect(m)
		}
		time.Sleep(rand.N(10 * time.Millisecond)) // a poll lands at any phase of the frames
		start := time.Now()
		r.hub.Publish(snapshotWith(m))
		var last time.Time
		for j, w := range watchers {
			select {
			case at := <-w.seen:
				if at.After(last) {
					last = at
				}
			case <-time.After(wait):
				b.Fatalf("publish %d: session %d never drew %s", i, j, m)
			}
		}
		lat = append(lat, last.Sub(start))
	}
	b.StopTimer()
	for _, c := range clients {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		b.Fatalf("shutdown: %v", err)
	}
	// Let the connections' goroutines end, so that the next measurement's memory baseline
	// does not shrink under it as they go.
	for n, deadline := runtime.NumGoroutine(), time.Now().Add(5*time.Second); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			break
		}
		n = m
	}
	slices.Sort(lat)
	return fanned{
		lat:    lat,
		heapMB: float64(int64(heap1)-int64(heap0)) / float64(n) / (1 << 20),
		rssMB:  float64(rss1-rss0) / float64(n) / 1024,
	}
}
