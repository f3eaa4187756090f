package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Jobs: a retry or a deletion asked for in one process and carried out by the member
// holding the account's poll lease, so that every request of the account goes through
// one governor. The job's row is its durable record: who asked, who runs it, how far it
// got (each document's result in job_results as it ends), and how it ended. A job whose
// runner is no longer a member goes to whoever holds the account next.

// The states of a job.
const (
	JobQueued  = "queued"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed" // the runner could not carry it out (the ledger failed); Err says why
)

// ErrJobLost is returned to a runner that no longer runs the job: it ended, or another
// member took it over after this one's registration ran out.
var ErrJobLost = errors.New("store: the job is no longer this runner's")

// Job is one job as its row holds it.
type Job struct {
	ID       int64
	Account  string
	Kind     string // what the job does (its runner's word: retry, clear)
	Request  []byte // what it was asked to do, in its runner's encoding
	AskedBy  string
	Created  time.Time
	State    string
	Runner   string // the member carrying it out; "" while queued
	Host     string // the runner's host, as the member names it
	Progress []byte // the runner's last word on how far it got
	Err      string
	Cancel   bool // whoever asked wants it stopped
	Updated  time.Time
}

// JobResult is one document's result in a job, in the runner's encoding.
type JobResult struct {
	ID     int64
	DocID  string
	Result []byte
}

const jobColumns = `id, account, kind, request, asked_by, created, state, runner, host, progress, error, cancel, updated`

func scanJob(row interface{ Scan(...any) error }) (Job, error) {
	var j Job
	var request, progress string
	var created, updated int64
	var cancel int
	if err := row.Scan(&j.ID, &j.Account, &j.Kind, &request, &j.AskedBy, &created, &j.State, &j.Runner, &j.Host,
		&progress, &j.Err, &cancel, &updated); err != nil {
		return j, err
	}
	j.Request, j.Progress = []byte(request), []byte(progress)
	j.Created, j.Updated, j.Cancel = fromNanos(created), fromNanos(updated), cancel != 0
	return j, nil
}

// SubmitJob queues a job for the account's poll-lease holder, on disk before it returns.
func (s *Store) SubmitJob(ctx context.Context, account, kind string, request []byte, askedBy string) (int64, error) {
	if s.ledger == nil {
		return 0, ErrReadOnly
	}
	if account == "" || kind == "" {
		return 0, fmt.Errorf("store: job %q for %q: empty account or kind", kind, account)
	}
	c := s.eng.clock
	var id int64
	if err := s.ledger.QueryRowContext(ctx, `INSERT INTO jobs (account, kind, request, asked_by, created, state, updated)
		VALUES ($1, $2, $3, $4, `+c+`, $5, `+c+`) RETURNING id`, account, kind, string(request), askedBy, JobQueued).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: job for %s: %w", account, err)
	}
	return id, nil
}

// Job reads one job; ErrNotFound when there is none.
func (s *Store) Job(ctx context.Context, id int64) (Job, error) {
	j, err := scanJob(s.read.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, fmt.Errorf("store: job %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return j, fmt.Errorf("store: job %d: %w", id, err)
	}
	return j, nil
}

// CancelJob asks the job's runner to stop (before its next document).
func (s *Store) CancelJob(ctx context.Context, id int64) error {
	if s.ledger == nil {
		return ErrReadOnly
	}
	if _, err := s.ledger.ExecContext(ctx, `UPDATE jobs SET cancel = 1 WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: cancel job %d: %w", id, err)
	}
	return nil
}

// ClaimJobs takes, for holder, the open jobs of the accounts whose poll lease it holds:
// the queued ones, and those whose runner is no longer a member (it died; the job goes
// on where its results end). only, when not 0, takes that job alone.
func (s *Store) ClaimJobs(ctx context.Context, holder, host string, only int64) ([]Job, error) {
	if s.ledger == nil {
		return nil, ErrReadOnly
	}
	var out []Job
	err := s.inLedger(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE jobs SET state = $3, runner = $1, host = $2, updated = `+s.eng.clock+`
			WHERE id IN (SELECT id FROM jobs WHERE state IN ($4, $3)
				AND ($5 = 0 OR id = $5)
				AND account IN (SELECT account FROM poll_leases WHERE holder = $1)
				AND (state = $4 OR runner NOT IN (SELECT holder FROM members))
				ORDER BY id`+s.eng.skipLocked+`)
			RETURNING `+jobColumns, holder, host, JobRunning, JobQueued, only)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			j, err := scanJob(rows)
			if err != nil {
				return err
			}
			out = append(out, j)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim jobs for %s: %w", holder, err)
	}
	return out, nil
}

// JobProgress records how far the runner got, and reports whether whoever asked wants
// the job stopped. ErrJobLost when holder no longer runs it.
func (s *Store) JobProgress(ctx context.Context, id int64, holder string, progress []byte) (cancel bool, err error) {
	if s.ledger == nil {
		return false, ErrReadOnly
	}
	var c int
	err = s.ledger.QueryRowContext(ctx, `UPDATE jobs SET progress = $3, updated = `+s.eng.clock+`
		WHERE id = $1 AND runner = $2 AND state = $4 RETURNING cancel`, id, holder, string(progress), JobRunning).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("job %d: %w", id, ErrJobLost)
	}
	if err != nil {
		return false, fmt.Errorf("store: job %d: %w", id, err)
	}
	return c != 0, nil
}

// FinishJob records how the job ended (JobDone, or JobFailed with why). ErrJobLost when
// holder no longer runs it.
func (s *Store) FinishJob(ctx context.Context, id int64, holder, state, why string) error {
	if s.ledger == nil {
		return ErrReadOnly
	}
	res, err := s.ledger.ExecContext(ctx, `UPDATE jobs SET state = $3, error = $4, updated = `+s.eng.clock+`
		WHERE id = $1 AND runner = $2 AND state = $5`, id, holder, state, why, JobRunning)
	if err != nil {
		return fmt.Errorf("store: finish job %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("job %d: %w", id, ErrJobLost)
	}
	return nil
}

// AddJobResult records, through the batched writer, how one document of a job ended.
func AddJobResult(job int64, docID string, result []byte) Op {
	return jobResultOp{job: job, docID: docID, result: result}
}

type jobResultOp struct {
	job    int64
	docID  string
	result []byte
}

func (o jobResultOp) check() error {
	if o.job == 0 || o.docID == "" {
		return errors.New("job result: no job or document")
	}
	return nil
}

func (o jobResultOp) size() int { return opBase + len(o.result) }

func (o jobResultOp) apply(t *txn) error {
	if _, err := t.stmt(sJobResult).ExecContext(t.ctx, o.job, o.docID, string(o.result)); err != nil {
		return fmt.Errorf("job %d result for %s: %w", o.job, o.docID, err)
	}
	return nil
}

// JobResults lists the results of a job recorded after the one numbered after (0: all),
// in the order they were recorded.
func (s *Store) JobResults(ctx context.Context, job, after int64) ([]JobResult, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, doc_id, result FROM job_results WHERE job = $1 AND id > $2 ORDER BY id`, job, after)
	if err != nil {
		return nil, fmt.Errorf("store: job %d results: %w", job, err)
	}
	defer rows.Close()
	var out []JobResult
	for rows.Next() {
		var r JobResult
		var result string
		if err := rows.Scan(&r.ID, &r.DocID, &result); err != nil {
			return nil, fmt.Errorf("store: job %d results: %w", job, err)
		}
		r.Result = []byte(result)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: job %d results: %w", job, err)
	}
	return out, nil
}
