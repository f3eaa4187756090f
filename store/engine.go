package store

// engine is what differs between the databases a store runs on. Everything else (the
// ops, the writer and its handling of a database that refuses writes, the reads, the
// ledger) is one code path in standard SQL, whose placeholders ($1, $2, …) both engines
// read.
type engine struct {
	// migrations is the folder under migrations/ that holds this engine's NNN_name.sql.
	migrations string
	// versionTable creates the table of applied migrations when it is missing.
	versionTable string
	// lockSchema, run first in each migration's transaction, keeps two processes from
	// applying one step twice; "" where beginning the transaction already locks.
	lockSchema string
	// clock is the database's clock as Unix nanoseconds, in SQL. Leases are timed by it,
	// never by a host's: the processes sharing a store share its clock.
	clock string
	// lockLease, appended to the SELECT that checks a lease before an intent is written,
	// keeps the lease from changing hands until the intent commits; "" where the
	// transaction already holds the write lock.
	lockLease string
	// lockDocument, when not "", is run (with the account and document id) in a writer's
	// transaction before it inserts a new document row, and in the ledger's before it
	// counts an intent on one: the row's count of intents then sees every intent,
	// whichever of the two commits first. SQLite needs none: one writer at a time.
	lockDocument string
	// each is a subquery of one text column, v, holding the elements of a JSON array of
	// strings passed as the parameter %s: how a statement takes a list of any length.
	each string
	// skipLocked, appended to a SELECT that picks rows for one process to take, passes
	// over rows another transaction has locked; "" where a transaction locks the whole
	// database (SQLite), so none can be locked by another.
	skipLocked string
	// remote is a server reached over a network, which may stop answering: each try of a
	// batch is bounded by batchTimeout. A local file's batch (SQLite) is not: its lock
	// waits are bounded by the writer's busy timeout, and interrupting it could not end a
	// stalled disk write anyway, while a context that can end costs modernc's driver a
	// goroutine and an allocation for every statement (4 % of the poller's allocations at
	// 10,000 accounts, pprof).
	remote bool
	// transient reports whether a statement failed for a reason outside the rows it
	// wrote (the database locked, full, restarting or out of reach): such writes are
	// tried again later; any other failure (a constraint) would fail again and is
	// reported instead.
	transient func(error) bool
}
