package store

import (
	"path/filepath"
	"testing"

	"emitop/internal/pgtest"
)

// testEngine is one engine the shared tests run on: every test of the store's contract
// runs once on each (forEngines), PostgreSQL on a real server the package starts.
type testEngine struct {
	name string
	// fresh is the location of a new, empty store.
	fresh func(t testing.TB) string
	// refuseBad creates a trigger that refuses, as a constraint would, every event of the
	// document "bad".
	refuseBad string
	// lock, run in a transaction of another process's store, keeps every writer out of
	// the history until it ends.
	lock string
}

var engines = []testEngine{
	{
		name:  "sqlite",
		fresh: func(t testing.TB) string { return filepath.Join(t.TempDir(), "state", "emitop.db") },
		refuseBad: `CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.doc_id = 'bad'
			BEGIN SELECT RAISE(ABORT, 'refused by test'); END`,
		lock: `INSERT INTO accounts (name, first_seen) VALUES ('lock', 0)`,
	},
	{
		name:  "postgres",
		fresh: func(t testing.TB) string { return pgtest.Need(t).Schema(t) },
		refuseBad: `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.doc_id = 'bad' THEN RAISE EXCEPTION 'refused by test'; END IF; RETURN NEW; END $$;
			CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse()`,
		lock: `LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE`,
	},
}

// forEngines runs test once on each engine, as subtests named after them.
func forEngines(t *testing.T, test func(t *testing.T, e testEngine)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { test(t, e) })
	}
}

// open opens a new, empty store on the engine.
func (e testEngine) open(t testing.TB) *Store { return openAt(t, e.fresh(t)) }
