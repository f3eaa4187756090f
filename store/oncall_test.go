package store

import (
	"context"
	"io/fs"
	"path"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"emitop/model"
)

func TestHealthChangesOldestFirst(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		at := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
		refused := &model.Problem{Class: model.ClassAuth, Code: "401", Message: "token abc"}
		enqueue(t, s,
			RecordHealth(HealthChange{At: at, Account: "sv-main", Provider: "sv-dte", From: model.HealthUp, To: model.HealthDegraded, Detail: "GET /x: 503"}),
			RecordHealth(HealthChange{At: at.Add(time.Minute), Account: "sv-main", Provider: "sv-dte", From: model.HealthDegraded, To: model.HealthRefused, Problem: refused}),
			RecordHealth(HealthChange{At: at.Add(-time.Hour), Account: "alegra-co", From: model.HealthUp, To: model.HealthDown}),
		)
		flush(t, s)
		got, err := s.HealthChanges(context.Background(), at.Add(-time.Minute), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].To != model.HealthDegraded || got[1].To != model.HealthRefused || !got[1].At.Equal(at.Add(time.Minute)) {
			t.Fatalf("health changes: %+v", got)
		}
		if p := got[1].Problem; p == nil || p.Class != model.ClassAuth || p.Code != "401" || p.Message != "" {
			t.Fatalf("the refusal keeps its class and code only: %+v", p)
		}
		if got[0].Detail != "GET /x: 503" || got[0].Provider != "sv-dte" {
			t.Fatalf("first change: %+v", got[0])
		}
		if err := s.Enqueue(context.Background(), RecordHealth(HealthChange{To: model.HealthDown})); err == nil {
			t.Fatal("a health change without an account was queued")
		}
	})
}

func TestLastSentIsTheLatestDeliveredPerKey(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		at := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
		n := func(min int, key, state, outcome string) Op {
			return RecordNotification(Notification{At: at.Add(time.Duration(min) * time.Minute), Notifier: "chat", Kind: "health",
				Key: key, State: state, Account: "sv-main", Summary: "sv-main is " + state, Outcome: outcome, Attempts: 1})
		}
		enqueue(t, s,
			n(0, "health/sv-main", "down", NotificationSent),
			n(5, "health/sv-main", "up", "failed: HTTP 500"), // not delivered: the receiver last heard "down"
			n(1, "window/sv-main/short", "low", NotificationSent),
			n(2, "window/sv-main/short", "low", NotificationSent),
			RecordNotification(Notification{At: at, Notifier: "pager", Kind: "health", Key: "health/sv-main", State: "up", Outcome: NotificationSent}),
		)
		flush(t, s)
		last, err := s.LastSent(context.Background(), "chat")
		if err != nil {
			t.Fatal(err)
		}
		if len(last) != 2 || last["health/sv-main"].State != "down" || !last["window/sv-main/short"].At.Equal(at.Add(2*time.Minute)) {
			t.Fatalf("last sent: %+v", last)
		}
		all, err := s.Notifications(context.Background(), NotificationFilter{Notifier: "chat"})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 4 || all[0].Outcome != "failed: HTTP 500" || all[0].Sent() {
			t.Fatalf("notifications newest first: %+v", all)
		}
	})
}

func TestReportReads(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		ctx := context.Background()
		at := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
		since := at.Add(-time.Minute)
		min := func(m int) time.Time { return at.Add(time.Duration(m) * time.Minute) }
		win := func(remaining int) []model.Window {
			return []model.Window{{Name: "short", Limit: 3, Remaining: remaining, Reset: -1}}
		}
		// Window "short": spent from minute 1 to 3, again from 5 on; a sample before since is ignored.
		for m, rem := range map[int]int{-10: 0, 0: 2, 1: 0, 2: 0, 3: 1, 4: 2, 5: 0, 6: 0} {
			enqueue(t, s, AddWindowSamples("sv-main", win(rem), min(m)))
		}
		cert := &model.Problem{Class: model.ClassCertificate, Verdict: model.VerdictEscalate, Code: "CERT"}
		fix := rejection("004", "bad")
		doc := func(id string, st model.Status, p *model.Problem, m int) Op {
			return UpsertDocument(model.Document{Account: "sv-main", Provider: "sv-dte", ID: id, Number: "N-" + id, Status: st, Problem: p}, nil, min(m))
		}
		enqueue(t, s,
			doc("old", model.StatusRejected, fix, -30), // rejected before the shift: not counted
			doc("a", model.StatusRejected, fix, 1),     // rejected, later escalated: counted once, as escalate
			doc("a", model.StatusRejected, cert, 2),    //
			doc("b", model.StatusRejected, fix, 3),     // rejected
			doc("c", model.StatusPending, nil, 4),      // never rejected
			doc("b", model.StatusAccepted, nil, 65),    // accepted after a retry, an hour later
			LogRequest(Request{Account: "sv-main", Method: "GET", Path: "/x", Status: 200, At: min(1)}),
			LogRequest(Request{Account: "sv-main", Method: "GET", Path: "/x", Status: 200, At: min(20)}),
			LogRequest(Request{Account: "sv-main", Method: "GET", Path: "/x", Status: 200, At: min(61)}),
			RecordAction(model.Action{At: min(64), Operator: "ana", Kind: "force-retry", Account: "sv-main", DocID: "b", Reason: "MH confirmed", Outcome: "accepted"}),
			RecordAction(model.Action{At: min(64), Operator: "ana", Kind: "retry", Account: "sv-main", Outcome: "batch of 1: 1 accepted"}),
			RecordAction(model.Action{At: min(-20), Operator: "ana", Kind: "retry", Account: "sv-main", DocID: "old", Outcome: "rejected"}),
		)
		flush(t, s)

		runs, err := s.WindowRuns(ctx, since, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 2 || !runs[0].From.Equal(min(1)) || !runs[0].Until.Equal(min(3)) || !runs[1].From.Equal(min(5)) || !runs[1].Until.IsZero() ||
			runs[0].Runs != 2 || runs[1].Runs != 2 {
			t.Fatalf("window runs: %+v", runs)
		}
		if runs, err := s.WindowRuns(ctx, since, 1); err != nil || len(runs) != 1 || !runs[0].From.Equal(min(5)) || runs[0].Runs != 2 {
			t.Fatalf("the last window run: %+v %v", runs, err)
		}

		rej, err := s.Rejections(ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		want := []RejectionCount{
			{Account: "sv-main", Class: model.ClassCertificate, Verdict: model.VerdictEscalate, Documents: 1},
			{Account: "sv-main", Class: model.ClassRejected, Verdict: model.VerdictFix, Documents: 1},
		}
		if len(rej) != len(want) || rej[0] != want[0] || rej[1] != want[1] {
			t.Fatalf("rejections: %+v, want %+v", rej, want)
		}

		retries, err := s.Retries(ctx, since, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(retries) != 1 || retries[0].Number != "N-b" || retries[0].Reason != "MH confirmed" || retries[0].Kind != "force-retry" {
			t.Fatalf("retries: %+v", retries)
		}

		// Hours are the clock hours of the zone asked for: 12:20 UTC is in the UTC hour of
		// 12:00 but, in Kathmandu (UTC+5:45), at 18:05, in the hour the later events are in.
		kathmandu, err := time.LoadLocation("Asia/Kathmandu")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			loc  *time.Location
			want []Hour
		}{
			{time.UTC, []Hour{{Start: at, Events: 4, Rejections: 3, Requests: 2}, {Start: at.Add(time.Hour), Events: 1, Requests: 1}}},
			{kathmandu, []Hour{{Start: time.Date(2026, 3, 14, 17, 0, 0, 0, kathmandu), Events: 4, Rejections: 3, Requests: 1},
				{Start: time.Date(2026, 3, 14, 18, 0, 0, 0, kathmandu), Events: 1, Requests: 2}}},
		} {
			hours, err := s.Hours(ctx, since, c.loc)
			if err != nil {
				t.Fatal(err)
			}
			if len(hours) != len(c.want) {
				t.Fatalf("hours in %s: %+v, want %+v", c.loc, hours, c.want)
			}
			for i, h := range hours {
				w := c.want[i]
				if !h.Start.Equal(w.Start) || h.Events != w.Events || h.Rejections != w.Rejections || h.Requests != w.Requests {
					t.Errorf("hours in %s: %+v, want %+v", c.loc, hours, c.want)
				}
			}
		}
	})
}

// TestReportReadsAreBounded: a window that flaps at every sample, an account whose health
// flaps and a flood of retries are read as their most recent rows and their counts, per
// account and window: what one provider does crowds out no other account, and what is
// read stays bounded however long the night was.
func TestReportReadsAreBounded(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		s := e.open(t)
		ctx := context.Background()
		at := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
		sec := func(n int) time.Time { return at.Add(time.Duration(n) * time.Second) }
		const n = 3000
		var ops []Op
		for i := range n {
			ops = append(ops,
				AddWindowSamples("sv-main", []model.Window{{Name: "short", Limit: 3, Remaining: i % 2, Reset: -1}}, sec(i)),
				RecordHealth(HealthChange{At: sec(i), Account: "sv-main", From: model.HealthUp, To: model.HealthDegraded}),
				RecordAction(model.Action{At: sec(i), Operator: "ana", Kind: "retry", Account: "sv-main", DocID: "d", Outcome: "rejected"}))
		}
		ops = append(ops,
			AddWindowSamples("alegra-co", []model.Window{{Limit: 150, Remaining: 0, Reset: -1}}, sec(1)),
			RecordHealth(HealthChange{At: sec(1), Account: "alegra-co", From: model.HealthUp, To: model.HealthDown}),
			RecordAction(model.Action{At: sec(1), Operator: "ben", Kind: "retry", Account: "alegra-co", DocID: "x", Outcome: "accepted"}))
		enqueue(t, s, ops...)
		flush(t, s)

		runs, err := s.WindowRuns(ctx, at, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 6 || runs[0].Account != "alegra-co" || runs[0].Runs != 1 || runs[5].Runs != n/2 || !runs[5].From.Equal(sec(n-2)) ||
			!runs[5].Until.Equal(sec(n-1)) || !runs[1].From.Equal(sec(n-10)) {
			t.Fatalf("window runs: %d %+v", len(runs), runs)
		}
		changes, err := s.HealthChanges(ctx, at, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != 11 || changes[0].Account != "alegra-co" || !changes[10].At.Equal(sec(n-1)) {
			t.Fatalf("health changes: %d %+v", len(changes), changes)
		}
		retries, err := s.Retries(ctx, at, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(retries) != 11 || retries[0].Operator != "ben" || !retries[10].At.Equal(sec(n-1)) {
			t.Fatalf("retries: %d %+v", len(retries), retries)
		}
		counts, err := s.Counts(ctx, at)
		if err != nil {
			t.Fatal(err)
		}
		if counts["sv-main"] != (ReportCounts{HealthChanges: n, Retries: n}) || counts["alegra-co"] != (ReportCounts{HealthChanges: 1, Retries: 1}) {
			t.Fatalf("counts: %+v", counts)
		}
	})
}

// TestMigrationsMayLeaveGaps: migration numbers are handed out to work that lands in any
// order. A database that has 001 and 003 gets 002 when it arrives; a number used twice,
// or one this emitop does not know in the database, is refused.
func TestMigrationsMayLeaveGaps(t *testing.T) {
	forEngines(t, func(t *testing.T, e testEngine) {
		saved := migrationFiles
		t.Cleanup(func() { migrationFiles = saved })
		s := e.open(t)
		eng := s.eng
		s.Close()
		dir := "migrations/" + eng.migrations + "/"
		// The writer prepares its statements on the tables of 001 and 004: those stay.
		initSQL, err := fs.ReadFile(saved, dir+"001_init.sql")
		if err != nil {
			t.Fatal(err)
		}
		fleetSQL, err := fs.ReadFile(saved, dir+"004_fleet.sql")
		if err != nil {
			t.Fatal(err)
		}
		files := func(names ...string) fstest.MapFS {
			m := fstest.MapFS{}
			for _, n := range names {
				m[dir+n] = &fstest.MapFile{Data: []byte("CREATE TABLE t" + n[:3] + " (x integer);")}
			}
			m[dir+"001_init.sql"] = &fstest.MapFile{Data: initSQL}
			m[dir+"004_fleet.sql"] = &fstest.MapFile{Data: fleetSQL}
			return m
		}
		loc := e.fresh(t)
		versions := func() []int {
			t.Helper()
			s := openAt(t, loc)
			defer s.Close()
			rows, err := s.read.Query(`SELECT version FROM schema_version ORDER BY version`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []int
			for rows.Next() {
				var v int
				rows.Scan(&v)
				out = append(out, v)
			}
			return out
		}
		migrationFiles = files("003_c.sql")
		if v := versions(); !slices.Equal(v, []int{1, 3, 4}) {
			t.Fatalf("applied %v, want [1 3 4]", v)
		}
		migrationFiles = files("002_b.sql", "003_c.sql")
		if v := versions(); !slices.Equal(v, []int{1, 2, 3, 4}) {
			t.Fatalf("applied %v, want [1 2 3 4]", v)
		}
		migrationFiles = fstest.MapFS{dir + "001_init.sql": &fstest.MapFile{Data: initSQL}, dir + "003_c.sql": &fstest.MapFile{Data: []byte("CREATE TABLE t003 (x integer);")}}
		if _, err := Open(context.Background(), loc); err == nil {
			t.Fatal("a database with a migration this emitop lacks was opened")
		}
		migrationFiles = files("002_b.sql", "002_x.sql")
		if _, err := migrations(eng); err == nil {
			t.Fatal("two migrations numbered 002 were accepted")
		}
	})
}

// TestMigrationsRunInParallel: both engines have the same migration numbers, so a
// database of either at version N has the same tables; and every migration file is in
// an engine's folder (one left in migrations/ itself, as a merge might leave it, would
// be applied by neither).
func TestMigrationsRunInParallel(t *testing.T) {
	numbers := func(eng *engine) []int {
		ms, err := migrations(eng)
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for _, m := range ms {
			out = append(out, m.version)
		}
		return out
	}
	if lite, pg := numbers(sqliteEngine), numbers(postgresEngine); !slices.Equal(lite, pg) {
		t.Errorf("SQLite migrations %v, PostgreSQL %v: each step needs both", lite, pg)
	}
	err := fs.WalkDir(migrationFiles, "migrations", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path.Dir(p) != "migrations/sqlite" && path.Dir(p) != "migrations/postgres" {
			t.Errorf("%s is in no engine's folder", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
