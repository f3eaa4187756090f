package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"emitop/internal/pgtest"
	"emitop/model"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

const benchAccounts = 20

var benchRaw = []byte(strings.Repeat("{\"estado\":\"RECHAZADO\"}", 3))

// benchEvent is the i-th event of the benchmarks: a rejection with its raw response.
func benchEvent(i int, p *model.Problem) model.Event {
	return model.Event{
		At: t0.Add(time.Duration(i) * time.Millisecond), Account: fmt.Sprintf("acct-%02d", i%benchAccounts),
		Provider: "sv-dte", DocID: fmt.Sprintf("DTE-%07d", i/benchAccounts), Number: fmt.Sprintf("DTE-01-%07d", i),
		Status: model.StatusRejected, Kind: KindStatus, Problem: p, Raw: benchRaw,
	}
}

// rawInsert writes events the fastest plain way: one prepared statement, rawBatch rows per
// transaction, the problem encoded as the store encodes it.
const rawBatch = 1000

func rawInsert(db *sql.DB, n int, ev func(int) model.Event) error {
	for start := 0; start < n; start += rawBatch {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		st, err := tx.Prepare(stmtSQL[sEvent])
		if err != nil {
			tx.Rollback()
			return err
		}
		for i := start; i < min(start+rawBatch, n); i++ {
			e := ev(i)
			pj, err := problemJSON(e.Problem)
			if err != nil {
				tx.Rollback()
				return err
			}
			if _, err := st.Exec(nanos(e.At), e.Account, e.Provider, e.DocID, e.Number, string(e.Status),
				e.Kind, pj, e.Raw); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func insertAccounts(db *sql.DB) error {
	for a := range benchAccounts {
		if _, err := db.Exec(`INSERT INTO accounts (name, provider, first_seen) VALUES (?, 'sv-dte', 0)`,
			fmt.Sprintf("acct-%02d", a)); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkIngest writes b.N events through the store's Writer (one Enqueue per event, one
// Flush at the end) and b.N more as raw batched inserts into another file of the same
// schema, and reports both costs and their ratio (store-vs-raw: raw time / store time,
// so 1 means as fast as raw).
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	s := openAt(b, filepath.Join(dir, "store.db"))
	r := openAt(b, filepath.Join(dir, "raw.db"))
	if err := insertAccounts(r.write); err != nil {
		b.Fatal(err)
	}
	p := rejection("004", "Registro duplicado")
	ev := func(i int) model.Event { return benchEvent(i, p) }
	b.ResetTimer()

	start := time.Now()
	for i := range b.N {
		if err := s.Enqueue(ctx, AddEvent(ev(i))); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	storeTime := time.Since(start)

	start = time.Now()
	if err := rawInsert(r.write, b.N, ev); err != nil {
		b.Fatal(err)
	}
	rawTime := time.Since(start)
	b.StopTimer()

	b.ReportMetric(float64(storeTime.Nanoseconds())/float64(b.N), "store-ns/event")
	b.ReportMetric(float64(rawTime.Nanoseconds())/float64(b.N), "raw-ns/event")
	b.ReportMetric(float64(rawTime)/float64(storeTime), "store-vs-raw")
}

// fixture is a database with 1M events over 20 accounts and 100k documents, built once per
// benchmark run.
var fixture struct {
	once sync.Once
	dir  string
	path string
	err  error
}

const (
	fixtureDocs   = 100_000
	fixtureRounds = 10 // events per document
)

// fixtureStatus is document d's status after round r: the last round decides, a third of
// the documents end rejected.
func fixtureStatus(d, r int) model.Status {
	return []model.Status{model.StatusRejected, model.StatusPending, model.StatusAccepted}[(d+fixtureRounds-1-r)%3]
}

func buildFixture() (string, error) {
	fixture.once.Do(func() {
		fixture.dir, fixture.err = os.MkdirTemp("", "emitop-store-bench-")
		if fixture.err != nil {
			return
		}
		fixture.path = filepath.Join(fixture.dir, "history.db")
		fixture.err = fillFixture(fixture.path)
	})
	return fixture.path, fixture.err
}

func fillFixture(path string) error {
	s, err := Open(context.Background(), path)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := insertAccounts(s.write); err != nil {
		return err
	}
	// Fifty rejection reasons, as an authority's catalogue would give.
	reasons := make([]*model.Problem, 50)
	for i := range reasons {
		reasons[i] = rejection(fmt.Sprintf("%03d", i), fmt.Sprintf("Motivo de rechazo número %d", i))
	}
	at := func(d, r int) time.Time { return t0.Add(time.Duration(r*fixtureDocs+d) * time.Millisecond) }
	ev := func(i int) model.Event {
		r, d := i/fixtureDocs, i%fixtureDocs
		e := model.Event{At: at(d, r), Account: fmt.Sprintf("acct-%02d", d%benchAccounts), Provider: "sv-dte",
			DocID: fmt.Sprintf("DTE-%07d", d), Number: fmt.Sprintf("DTE-01-%07d", d),
			Status: fixtureStatus(d, r), Kind: KindStatus, Raw: benchRaw}
		if r == 0 {
			e.Kind = KindSeen
		}
		if e.Status == model.StatusRejected {
			e.Problem = reasons[d%len(reasons)]
		}
		return e
	}
	if err := rawInsert(s.write, fixtureDocs*fixtureRounds, ev); err != nil {
		return err
	}
	tx, err := s.write.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.Prepare(`INSERT INTO documents (account, doc_id, number, provider, status, problem, class,
		verdict, code, first_seen, changed) VALUES (?, ?, ?, 'sv-dte', ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	for d := range fixtureDocs {
		last := ev((fixtureRounds-1)*fixtureDocs + d)
		prob, err := problemJSON(last.Problem)
		if err != nil {
			return err
		}
		class, verdict, code := problemColumns(last.Problem)
		if _, err := st.Exec(last.Account, last.DocID, last.Number, string(last.Status), prob, class, verdict,
			code, nanos(at(d, 0)), nanos(last.At)); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = s.write.Exec(`ANALYZE`)
	return err
}

// BenchmarkRecentRejected reads the newest 100 rejected documents of one account from a
// history of 1M events (the fixture takes a while to build the first time).
func BenchmarkRecentRejected(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1M-event fixture")
	}
	path, err := buildFixture()
	if err != nil {
		b.Fatal(err)
	}
	s := openAt(b, path)
	ctx := context.Background()
	var events, docs int
	if err := s.read.QueryRow(`SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM documents)`).Scan(&events, &docs); err != nil {
		b.Fatal(err)
	}
	if events != fixtureDocs*fixtureRounds || docs != fixtureDocs {
		b.Fatalf("fixture has %d events, %d documents", events, docs)
	}
	b.ResetTimer()
	for b.Loop() {
		got, err := s.RecentRejected(ctx, "acct-07", 100)
		if err != nil || len(got) != 100 || got[0].Status != model.StatusRejected || got[0].Problem == nil {
			b.Fatalf("RecentRejected: %d, %v", len(got), err)
		}
	}
}

// BenchmarkEngines writes b.N polls' worth of ops (a new document with its "seen" event,
// and the request that listed it) through a store on each engine, one Enqueue per poll
// and one Flush at the end, as the poller does; and reports each engine's ops per second
// and their ratio (postgres-vs-sqlite: PostgreSQL's rate over SQLite's). Each engine
// keeps its own durability: SQLite's writer commits with synchronous=NORMAL in WAL mode,
// PostgreSQL's waits for the WAL flush, on a server of its own with fsync on, over
// loopback TCP.
func BenchmarkEngines(b *testing.B) {
	ctx := context.Background()
	server := pgtest.New(b, true)
	rate := map[string]float64{}
	for _, e := range engines {
		loc := e.fresh(b)
		if e.name == "postgres" {
			loc = server.Schema(b)
		}
		s := openAt(b, loc)
		start := time.Now()
		for i := range b.N {
			doc := model.Document{Account: fmt.Sprintf("acct-%02d", i%benchAccounts), Provider: "sv-dte",
				ID: fmt.Sprintf("DTE-%07d", i), Number: fmt.Sprintf("DTE-01-%07d", i), Status: model.StatusRejected,
				Problem: rejection("004", "Registro duplicado")}
			if err := s.Enqueue(ctx, UpsertDocument(doc, benchRaw, t0.Add(time.Duration(i))),
				LogRequest(Request{Account: doc.Account, Method: "GET", Path: "/dte", Status: 200, At: t0})); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		rate[e.name] = float64(2*b.N) / took.Seconds()
		b.ReportMetric(rate[e.name], e.name+"-ops/s")
	}
	b.ReportMetric(rate["postgres"]/rate["sqlite"], "postgres-vs-sqlite")
}
