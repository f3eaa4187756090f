package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/model"
)

// t0 is the tests' clock origin.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openTest opens a new SQLite store, for the tests of what is SQLite's own.
func openTest(t testing.TB) *Store {
	return engines[0].open(t)
}

func enqueue(t testing.TB, s *Store, ops ...Op) {
	t.Helper()
	if err := s.Enqueue(context.Background(), ops...); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

func flush(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func rejection(code, msg string) *model.Problem {
	return &model.Problem{Provider: "sv-dte", Code: code, Class: model.ClassRejected,
		Verdict: model.VerdictFix, Message: msg, Fields: []string{"items.0.price"}}
}

// TestOpenCreatesPrivateFile: a SQLite store's directory and file are its user's alone,
// whatever characters its path holds.
func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd?dir#name%20")
	path := filepath.Join(dir, "emitop.db")
	openAt(t, path)
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
}

func TestOpenMigratesOnce(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		loc := e.fresh(t)
		s := openAt(t, loc)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s = openAt(t, loc) // a second Open applies nothing
		ms, err := migrations(s.eng)
		if err != nil {
			t.Fatalf("migrations: %v", err)
		}
		var n, max int
		if err := s.read.QueryRow(`SELECT count(*), max(version) FROM schema_version`).Scan(&n, &max); err != nil {
			t.Fatal(err)
		}
		if last := ms[len(ms)-1].version; n != len(ms) || max != last {
			t.Fatalf("schema_version has %d rows up to %d, want %d up to %d", n, max, len(ms), last)
		}
	})
}

// TestConnectionsGetTheirPragmas: each SQLite pool has the durability and waits its
// role needs.
func TestConnectionsGetTheirPragmas(t *testing.T) {
	s := openTest(t)
	dbs := map[string]*sql.DB{"write": s.write, "read": s.read, "ledger": s.ledger}
	check := func(db, q, want string) {
		t.Helper()
		var got string
		if err := dbs[db].QueryRow(q).Scan(&got); err != nil || got != want {
			t.Errorf("%s: %s = %q, %v; want %q", db, q, got, err, want)
		}
	}
	for db := range dbs {
		check(db, "PRAGMA journal_mode", "wal")
		check(db, "PRAGMA foreign_keys", "1")
	}
	check("read", "PRAGMA busy_timeout", "5000")
	check("ledger", "PRAGMA busy_timeout", "5000")
	check("write", "PRAGMA busy_timeout", strconv.Itoa(int(writerBusy.Milliseconds()))) // it retries with backoff
	check("write", "PRAGMA synchronous", "1")                                           // NORMAL
	check("read", "PRAGMA query_only", "1")
	check("ledger", "PRAGMA synchronous", "2") // FULL
}

func TestRefusesNewerDatabase(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		path := e.fresh(t)
		s := openAt(t, path)
		if _, err := s.write.Exec(`INSERT INTO schema_version (version, name, applied) VALUES (99, '099_future.sql', 0)`); err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, err := Open(context.Background(), path)
		if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer") {
			t.Fatalf("Open of a newer database: %v", err)
		}
	})
}

func TestDocumentChangeDetection(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		doc := func(st model.Status, p *model.Problem) model.Document {
			return model.Document{Account: "sv-main", Provider: "sv-dte", ID: "DTE-1", Number: "DTE-01-0001", Status: st, Problem: p}
		}
		waited := rejection("004", "Registro duplicado")
		waited.Wait, waited.HasWait = 30*time.Second, true
		waited.Windows = []model.Window{{Name: "short", Limit: 10, Remaining: 3, Reset: time.Second}}
		steps := []struct {
			name string
			doc  model.Document
			want string // the event kind recorded, "" for none
		}{
			{"first sight", doc(model.StatusPending, nil), KindSeen},
			{"same again", doc(model.StatusPending, nil), ""},
			{"rejected", doc(model.StatusRejected, rejection("004", "Registro duplicado")), KindStatus},
			{"same rejection", doc(model.StatusRejected, rejection("004", "Registro duplicado")), ""},
			{"wait and windows do not count", doc(model.StatusRejected, waited), ""},
			{"another code", doc(model.StatusRejected, rejection("005", "Sello inválido")), KindProblem},
			{"problem cleared", doc(model.StatusRejected, nil), KindProblem},
			{"accepted", doc(model.StatusAccepted, nil), KindStatus},
			{"listing without number", model.Document{Account: "sv-main", ID: "DTE-1", Status: model.StatusAccepted}, ""},
		}
		for i, st := range steps {
			at := t0.Add(time.Duration(i) * time.Minute)
			enqueue(t, s, UpsertDocument(st.doc, []byte("raw "+st.name), at))
			flush(t, s)
			evs, err := s.Events(context.Background(), EventFilter{Account: "sv-main", DocID: "DTE-1", Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(evs) == 1 && evs[0].At.Equal(at) {
				got = evs[0].Kind
				if string(evs[0].Raw) != "raw "+st.name || evs[0].Status != st.doc.Status {
					t.Errorf("%s: event %+v", st.name, evs[0])
				}
			}
			if got != st.want {
				t.Errorf("%s: event kind %q, want %q", st.name, got, st.want)
			}
		}
		d, err := s.Document(context.Background(), "sv-main", "DTE-1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != model.StatusAccepted || d.Problem != nil || !d.FirstSeen.Equal(t0) ||
			!d.Changed.Equal(t0.Add(7*time.Minute)) || d.Provider != "sv-dte" || d.Number != "DTE-01-0001" {
			t.Fatalf("document row: %+v", d)
		}
		evs, err := s.Events(context.Background(), EventFilter{Account: "sv-main"})
		if err != nil || len(evs) != 5 {
			t.Fatalf("events: %d, %v; want 5", len(evs), err)
		}
		if _, err := s.Document(context.Background(), "sv-main", "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing document: %v", err)
		}
	})
}

func TestProblemRoundTrip(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		p := rejection("004", "Registro duplicado")
		p.Wait, p.HasWait = 30*time.Second, true
		enqueue(t, s, UpsertDocument(model.Document{Account: "a", ID: "1", Status: model.StatusRejected, Problem: p}, nil, t0))
		flush(t, s)
		d, err := s.Document(context.Background(), "a", "1")
		if err != nil {
			t.Fatal(err)
		}
		if d.Problem == nil || d.Problem.Code != "004" || d.Problem.Wait != 30*time.Second ||
			!slices.Equal(d.Problem.Fields, p.Fields) || d.Problem.Class != model.ClassRejected {
			t.Fatalf("problem = %+v", d.Problem)
		}
		d.Problem.Fields[0], d.Problem.Code = "changed", "changed" // a caller's copy
		if again, _ := s.Document(context.Background(), "a", "1"); again.Problem.Code != "004" || again.Problem.Fields[0] != "items.0.price" {
			t.Fatalf("a caller changed the stored problem: %+v", again.Problem)
		}
		var class, verdict, code string
		if err := s.read.QueryRow(`SELECT class, verdict, code FROM documents`).Scan(&class, &verdict, &code); err != nil {
			t.Fatal(err)
		}
		if class != "rejected" || verdict != "fix" || code != "004" {
			t.Fatalf("columns: %s %s %s", class, verdict, code)
		}
	})
}

func TestEventsNewestFirstAndFilters(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		var ops []Op
		for i := range 12 {
			acct := []string{"alegra-co", "sv-main"}[i%2]
			ops = append(ops, AddEvent(model.Event{
				At: t0.Add(time.Duration(i/3) * time.Minute), Account: acct, DocID: []string{"A", "B"}[i%4/2],
				Status: model.StatusPending, Kind: "verify", Number: string(rune('a' + i)),
			}))
		}
		enqueue(t, s, ops...)
		flush(t, s)
		ctx := context.Background()
		numbers := func(evs []model.Event) string {
			var b strings.Builder
			for _, e := range evs {
				b.WriteString(e.Number)
			}
			return b.String()
		}
		cases := []struct {
			name string
			f    EventFilter
			want string
		}{
			// Same minute: the later written first.
			{"all", EventFilter{}, "lkjihgfedcba"},
			{"account", EventFilter{Account: "sv-main"}, "ljhfdb"},
			{"document", EventFilter{Account: "sv-main", DocID: "B"}, "lhd"},
			{"since", EventFilter{Account: "alegra-co", Since: t0.Add(2 * time.Minute)}, "kig"},
			{"limit", EventFilter{Limit: 2}, "lk"},
		}
		for _, c := range cases {
			evs, err := s.Events(ctx, c.f)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if got := numbers(evs); got != c.want {
				t.Errorf("%s: %s, want %s", c.name, got, c.want)
			}
		}
	})
}

func TestRawIsCappedAt64KiB(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		big := bytes.Repeat([]byte("x"), model.MaxRaw+1000)
		enqueue(t, s,
			UpsertDocument(model.Document{Account: "a", ID: "1", Status: model.StatusRejected}, big, t0),
			AddEvent(model.Event{Account: "a", DocID: "2", Status: model.StatusUnknown, Kind: "emit", Raw: big, At: t0}),
			AddEvent(model.Event{Account: "a", DocID: "3", Status: model.StatusUnknown, Kind: "emit", Raw: big[:100], At: t0}),
		)
		flush(t, s)
		evs, err := s.Events(context.Background(), EventFilter{Account: "a"})
		if err != nil || len(evs) != 3 {
			t.Fatalf("events: %d, %v", len(evs), err)
		}
		want := map[string]int{"1": model.MaxRaw, "2": model.MaxRaw, "3": 100}
		for _, e := range evs {
			if len(e.Raw) != want[e.DocID] {
				t.Errorf("event for %s: raw of %d bytes, want %d", e.DocID, len(e.Raw), want[e.DocID])
			}
		}
		if big[len(big)-1] != 'x' || len(big) != model.MaxRaw+1000 {
			t.Fatal("the caller's buffer changed")
		}
	})
}

func TestWindowSeriesOldestFirst(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		for i := range 10 {
			enqueue(t, s, AddWindowSamples("sv-main", []model.Window{
				{Name: "short", Limit: 10, Remaining: 10 - i, Reset: time.Duration(i) * time.Second},
				{Name: "long", Limit: 100, Remaining: model.Unknown, Reset: -1},
			}, t0.Add(time.Duration(i)*time.Second)))
		}
		flush(t, s)
		ctx := context.Background()
		ws, err := s.WindowSeries(ctx, "sv-main", "short", t0.Add(2*time.Second), 5)
		if err != nil {
			t.Fatal(err)
		}
		var rem []int
		for _, w := range ws {
			rem = append(rem, w.Remaining)
		}
		if !slices.Equal(rem, []int{5, 4, 3, 2, 1}) {
			t.Fatalf("remaining = %v, want the last five oldest first", rem)
		}
		if last := ws[4]; !last.Observed.Equal(t0.Add(9*time.Second)) || last.Reset != 9*time.Second || last.Limit != 10 {
			t.Fatalf("last sample = %+v", last)
		}
		ws, err = s.WindowSeries(ctx, "sv-main", "long", time.Time{}, 0)
		if err != nil || len(ws) != 10 || ws[0].Remaining != model.Unknown || ws[0].HasReset() {
			t.Fatalf("long window: %+v, %v", ws, err)
		}
	})
}

func TestDocumentsFilterAndRecentRejected(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		var ops []Op
		for i := range 30 {
			st := []model.Status{model.StatusRejected, model.StatusPending, model.StatusAccepted}[i%3]
			ops = append(ops, UpsertDocument(model.Document{Account: []string{"a", "b"}[i%2],
				ID: string(rune('A' + i)), Status: st}, nil, t0.Add(time.Duration(i)*time.Second)))
		}
		enqueue(t, s, ops...)
		flush(t, s)
		ctx := context.Background()
		rej, err := s.RecentRejected(ctx, "a", 3)
		if err != nil {
			t.Fatal(err)
		}
		var ids string
		for _, d := range rej {
			ids += d.ID
		}
		// Rejected in a: i = 0, 6, 12, 18, 24 → newest three are 24, 18, 12.
		if ids != "YSM" {
			t.Fatalf("RecentRejected = %q, want YSM", ids)
		}
		docs, err := s.Documents(ctx, DocFilter{Statuses: []model.Status{model.StatusRejected, model.StatusPending}})
		if err != nil || len(docs) != 20 {
			t.Fatalf("rejected or pending: %d, %v", len(docs), err)
		}
		for i := 1; i < len(docs); i++ {
			if docs[i].Changed.After(docs[i-1].Changed) {
				t.Fatalf("not newest first at %d", i)
			}
		}
		accts, err := s.Accounts(ctx)
		if err != nil || len(accts) != 2 || accts[0].Name != "a" {
			t.Fatalf("accounts: %+v, %v", accts, err)
		}
	})
}

func TestRequestsAndActions(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		enqueue(t, s,
			PutAccount(model.Account{Name: "sv-main", Provider: "sv-dte"}),
			LogRequest(Request{Account: "sv-main", Method: "GET", Path: "/dte?token=secret", Status: 429,
				Latency: 120 * time.Millisecond, Class: model.ClassRateLimited, At: t0}),
			RecordAction(model.Action{At: t0, Operator: "ana", Fingerprint: "SHA256:abc", Kind: "retry",
				Account: "sv-main", DocID: "DTE-1", Reason: "fixed price", Outcome: "sent"}),
		)
		flush(t, s)
		ctx := context.Background()
		reqs, err := s.Requests(ctx, RequestFilter{Account: "sv-main"})
		if err != nil || len(reqs) != 1 {
			t.Fatalf("requests: %+v, %v", reqs, err)
		}
		if r := reqs[0]; r.Path != "/dte" || r.Status != 429 || r.Latency != 120*time.Millisecond ||
			r.Class != model.ClassRateLimited || !r.At.Equal(t0) {
			t.Fatalf("request = %+v", r)
		}
		acts, err := s.Actions(ctx, ActionFilter{Account: "sv-main", DocID: "DTE-1"})
		if err != nil || len(acts) != 1 || acts[0].Operator != "ana" || acts[0].Fingerprint != "SHA256:abc" ||
			acts[0].Reason != "fixed price" || !acts[0].At.Equal(t0) {
			t.Fatalf("actions: %+v, %v", acts, err)
		}
		accts, err := s.Accounts(ctx)
		if err != nil || len(accts) != 1 || accts[0].Provider != "sv-dte" {
			t.Fatalf("accounts: %+v, %v", accts, err)
		}
	})
}

func TestPruneInBatches(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		var ops []Op
		for i := range 2500 {
			ops = append(ops, LogRequest(Request{Account: "a", Method: "GET", Path: "/x", At: t0.Add(time.Duration(i) * time.Millisecond)}))
		}
		for i := range 7 {
			ops = append(ops, LogRequest(Request{Account: "a", Method: "GET", Path: "/new", At: t0.Add(time.Hour + time.Duration(i))}))
		}
		ops = append(ops, AddWindowSamples("a", []model.Window{{Name: "w"}}, t0), AddWindowSamples("a", []model.Window{{Name: "w"}}, t0.Add(2*time.Hour)))
		enqueue(t, s, ops...)
		flush(t, s)
		ctx := context.Background()
		n, err := s.Prune(ctx, t0.Add(time.Hour), 1000)
		if err != nil || n != 2501 {
			t.Fatalf("Prune = %d, %v; want 2501", n, err)
		}
		reqs, err := s.Requests(ctx, RequestFilter{})
		if err != nil || len(reqs) != 7 || reqs[0].Path != "/new" {
			t.Fatalf("left: %d, %v", len(reqs), err)
		}
		if ws, _ := s.WindowSeries(ctx, "a", "w", time.Time{}, 0); len(ws) != 1 {
			t.Fatalf("window samples left: %d", len(ws))
		}
		if n, err := s.Prune(ctx, t0.Add(time.Hour), 1000); n != 0 || err != nil {
			t.Fatalf("second Prune = %d, %v", n, err)
		}
	})
}

func TestEnqueueRejectsMalformedOps(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		bad := []Op{
			UpsertDocument(model.Document{ID: "1", Status: model.StatusPending}, nil, t0),
			UpsertDocument(model.Document{Account: "a", ID: "1"}, nil, t0),
			AddEvent(model.Event{Account: "a", DocID: "1", Status: model.StatusPending}),
			AddWindowSamples("", nil, t0),
			LogRequest(Request{Account: "a"}),
			RecordAction(model.Action{Account: "a", Kind: "retry"}),
			PutAccount(model.Account{}),
		}
		good := AddEvent(model.Event{Account: "a", DocID: "1", Status: model.StatusPending, Kind: "verify"})
		for i, op := range bad {
			if err := s.Enqueue(context.Background(), good, op); err == nil {
				t.Errorf("op %d: accepted", i)
			}
		}
		flush(t, s)
		if evs, _ := s.Events(context.Background(), EventFilter{}); len(evs) != 0 {
			t.Fatalf("a call with a malformed op queued %d events", len(evs))
		}
	})
}

func TestFailedOpCostsOnlyItself(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		if _, err := s.write.Exec(e.refuseBad); err != nil {
			t.Fatal(err)
		}
		ev := func(id string) Op {
			return AddEvent(model.Event{Account: "a", DocID: id, Status: model.StatusPending, Kind: "verify", At: t0})
		}
		enqueue(t, s, ev("1"), ev("bad"), ev("2"))
		if err := s.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "refused by test") {
			t.Fatalf("Flush = %v, want the failed op's error", err)
		}
		if evs, _ := s.Events(context.Background(), EventFilter{}); len(evs) != 2 {
			t.Fatalf("%d events stored, want the 2 good ones", len(evs))
		}
		flush(t, s) // the error was reported once
	})
}

func TestCloseFlushesAndRefusesMore(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		path := e.fresh(t)
		s := openAt(t, path)
		enqueue(t, s, AddEvent(model.Event{Account: "a", DocID: "1", Status: model.StatusPending, Kind: "verify"}))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Enqueue(context.Background(), AddEvent(model.Event{Account: "a", DocID: "1", Status: model.StatusPending, Kind: "verify"})); !errors.Is(err, ErrClosed) {
			t.Fatalf("Enqueue after Close: %v", err)
		}
		if err := s.Flush(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Flush after Close: %v", err)
		}
		s = openAt(t, path)
		if evs, _ := s.Events(context.Background(), EventFilter{}); len(evs) != 1 {
			t.Fatalf("after reopen: %d events, want 1", len(evs))
		}
	})
}

func TestConcurrentWritersNeverBusy(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		loc := e.fresh(t)
		a := openAt(t, loc)
		b := openAt(t, loc) // a second process on the same store
		ctx := context.Background()
		const goroutines, each = 8, 200
		var wg sync.WaitGroup
		errs := make(chan error, goroutines*each)
		for g := range goroutines {
			s := []*Store{a, b}[g%2]
			wg.Go(func() {
				acct := string(rune('a' + g))
				for i := range each {
					doc := model.Document{Account: acct, ID: string(rune('A' + i%26)), Status: []model.Status{model.StatusPending, model.StatusRejected}[i%2]}
					if err := s.Enqueue(ctx, UpsertDocument(doc, nil, t0.Add(time.Duration(i))),
						LogRequest(Request{Account: acct, Method: "GET", Path: "/", At: t0})); err != nil {
						errs <- err
					}
					if i%20 == 0 {
						// The ledger writes synchronously on its own connection meanwhile.
						holder := acct + "-holder"
						if ok, err := s.AcquireLease(ctx, acct, doc.ID, holder, time.Hour); err != nil || !ok {
							errs <- errors.Join(err, errors.New("lease refused"))
							continue
						}
						if _, err := s.RecordIntent(ctx, Intent{Account: acct, DocID: doc.ID, Holder: holder, Kind: "emit"}); err != nil {
							errs <- err
						}
						if err := s.ReleaseLease(ctx, acct, doc.ID, holder); err != nil {
							errs <- err
						}
					}
				}
			})
		}
		wg.Wait()
		for _, s := range []*Store{a, b} {
			if err := s.Flush(ctx); err != nil {
				errs <- err
			}
		}
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		reqs, err := a.Requests(ctx, RequestFilter{Limit: 10000})
		if err != nil || len(reqs) != goroutines*each {
			t.Fatalf("%d requests logged, want %d (%v)", len(reqs), goroutines*each, err)
		}
		var attempts int
		if err := a.read.QueryRow(`SELECT sum(attempts) FROM documents`).Scan(&attempts); err != nil || attempts != goroutines*each/20 {
			t.Fatalf("attempts = %d, want %d (%v)", attempts, goroutines*each/20, err)
		}
	})
}

// TestOpenTogether: processes started together (two `emitop retry` runs) open the same new
// database at once; every Open must succeed (none may meet SQLITE_BUSY, or apply a
// migration twice).
func TestOpenTogether(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		for round := range 10 {
			loc := e.fresh(t)
			const n = 6
			errs := make(chan error, n)
			stores := make(chan *Store, n)
			start := make(chan struct{})
			for range n {
				go func() {
					<-start
					s, err := Open(context.Background(), loc)
					errs <- err
					stores <- s
				}()
			}
			close(start)
			for range n {
				if err := <-errs; err != nil {
					t.Errorf("round %d: %v", round, err)
				}
				if s := <-stores; s != nil {
					s.Close()
				}
			}
		}
	})
}

func TestDocumentByNumber(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		enqueue(t, s,
			UpsertDocument(model.Document{Account: "sv", ID: "uuid-1", Number: "DTE-01-M001P001-000000000000001", Status: model.StatusRejected}, nil, t0),
			UpsertDocument(model.Document{Account: "sv", ID: "uuid-2", Number: "DTE-01-M001P001-000000000000002", Status: model.StatusRejected}, nil, t0),
			UpsertDocument(model.Document{Account: "other", ID: "uuid-3", Number: "DTE-01-M001P001-000000000000001", Status: model.StatusRejected}, nil, t0),
			UpsertDocument(model.Document{Account: "sv", ID: "uuid-4", Status: model.StatusPending}, nil, t0))
		flush(t, s)
		ctx := context.Background()
		d, err := s.DocumentByNumber(ctx, "sv", "DTE-01-M001P001-000000000000002")
		if err != nil || d.ID != "uuid-2" {
			t.Fatalf("by number: %+v, %v", d, err)
		}
		for _, number := range []string{"", "DTE-01-M001P001-000000000000009"} {
			if _, err := s.DocumentByNumber(ctx, "sv", number); !errors.Is(err, ErrNotFound) {
				t.Errorf("number %q: err %v, want ErrNotFound", number, err)
			}
		}
	})
}
