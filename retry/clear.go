package retry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"emitop/model"
	"emitop/poller"
	"emitop/store"
)

// ErrNoClear is returned by Clear for a provider that offers no deletion.
var ErrNoClear = errors.New("the provider offers no deletion of a failed document")

// CanClear reports whether the account's provider offers the deletion of a failed
// document (Factus: a bill the DIAN rejected).
func (r *Retrier) CanClear() bool { return r.c.CanClear() }

// PlanClear shows the request Clear would make for a document, its credentials redacted,
// and what it will do; the request's path waits for the status read that precedes it.
func (r *Retrier) PlanClear(doc model.Document) (model.PlannedRequest, string, error) {
	if !r.c.CanClear() {
		return model.PlannedRequest{}, "", ErrNoClear
	}
	rs, err := r.c.BuildClear([]string{doc.ID}, nil)
	if err != nil {
		return model.PlannedRequest{}, "", err
	}
	return r.request(rs),
		"read the status; if the provider still holds the document as rejected, delete it there, so that the system that made it sends it again, corrected",
		nil
}

// Clear deletes a failed document at its provider, so that the system that made it can
// send it again, corrected: Factus keeps a bill the DIAN rejected, and takes no other bill
// of the account, until it is deleted (its docs, manejo-errores and eliminar). Deleting is
// an operator's act, never the retry engine's: the caller has had it confirmed, and the
// reason (Options.Reason, required) is recorded with the outcome in the action log.
// Like a resend, it holds the document's lease, reads its status first (only a rejected
// document is deleted), writes its intent before the request leaves and goes through
// the account's governor; after a timeout or a 5xx it reads the status again.
func (r *Retrier) Clear(ctx context.Context, doc model.Document) (model.RetryResult, error) {
	if !r.c.CanClear() {
		return model.RetryResult{}, ErrNoClear
	}
	if strings.TrimSpace(r.opt.Reason) == "" {
		return model.RetryResult{}, errors.New("clear: deleting a document requires a reason")
	}
	acc := r.acc.Name
	if err := r.syncClock(context.WithoutCancel(ctx)); err != nil {
		return model.RetryResult{Doc: doc}, err
	}
	ru := &run{r: r, net: context.WithoutCancel(ctx), report: &model.RetryReport{Account: acc}, index: map[string]int{},
		until: map[string]time.Time{}, deadlines: map[int64]time.Time{}, start: r.clock.Now()}
	res := model.RetryResult{Doc: doc}
	ok, err := r.st.AcquireLease(ru.net, acc, doc.ID, r.holder, r.opt.LeaseTTL)
	if err != nil {
		return res, err
	}
	if !ok {
		res.Outcome, res.Detail = model.OutcomeSkipped, "another operator or process holds it: not deleted"
		return res, ru.record(res)
	}
	defer r.st.ReleaseLease(ru.net, acc, doc.ID, r.holder)

	readAt := r.clock.Now()
	it, err := ru.read(doc.ID)
	var pe *poller.ProblemError
	switch {
	case errors.As(err, &pe) && pe.Problem.Class == model.ClassNotFound:
		res.Outcome, res.ByPolicy = model.OutcomeSkipped, true
		res.Detail = "the provider holds no such document (deleted already?): nothing deleted"
		return res, ru.record(res)
	case err != nil:
		res.Outcome, res.Detail = model.OutcomeUnknown, "status read failed, not deleted: "+model.Line(err.Error(), 300)
		return res, ru.record(res)
	}
	until, err := ru.settle(doc.ID, it, readAt, "verify")
	if err != nil {
		return res, err
	}
	ru.adopt(&res, it)
	switch {
	case !until.IsZero():
		res.Outcome = model.OutcomeSkipped
		res.Detail = "an emission of it may still land until " + until.Format(time.TimeOnly) + ": not deleted; try again after"
		return res, ru.record(res)
	case it.Doc.Status != model.StatusRejected:
		res.Outcome, res.ByPolicy = model.OutcomeSkipped, true
		res.Detail = "status " + string(it.Doc.Status) + ": only a document the authority rejected is deleted"
		return res, ru.record(res)
	}
	rs, err := r.c.BuildClear([]string{doc.ID}, [][]byte{it.Raw})
	if err != nil {
		res.Outcome, res.Detail = model.OutcomeSkipped, "not deleted: "+model.Line(err.Error(), 300)
		return res, ru.record(res)
	}
	intent, err := r.st.RecordIntent(ru.net, store.Intent{Account: acc, DocID: doc.ID, Holder: r.holder, Kind: string(model.ActionClear),
		Request: rs.Method + " " + rs.Path, Deadline: r.clock.Now().Add(r.acc.Timeout + r.pad)})
	if errors.Is(err, store.ErrLeaseNotHeld) {
		res.Outcome, res.Detail = model.OutcomeSkipped, "lost its lease to another holder: not deleted"
		return res, ru.record(res)
	}
	if err != nil {
		return res, err
	}
	res.Sent = true
	sent, sendErr := ru.do(ru.net, ru.fence([]string{doc.ID}, []int64{intent}), rs.Method, rs.Path, rs.Body)
	var raw []byte
	switch {
	case sendErr == nil && sent.Response.Status/100 == 2:
		raw = sent.Response.Body
		res.Outcome, res.Detail = model.OutcomeCleared, "deleted at the provider: the system that made it sends it again, corrected"
	case sendErr == nil && sent.Response.Status < 500:
		raw = sent.Response.Body
		p := r.c.Decode(sent.Response)
		res.Outcome = model.OutcomeRejected
		res.Detail = fmt.Sprintf("not deleted: HTTP %d %s %s", p.Status, p.Class, model.Line(p.Message, 160))
	default:
		// The deletion may have landed: the status says, and a deleted document reads
		// as not found.
		after, rerr := ru.read(doc.ID)
		var pe *poller.ProblemError
		switch {
		case rerr == nil:
			res.Outcome, res.Detail = model.OutcomeRejected, "not deleted: it reads "+string(after.Doc.Status)
			raw = after.Raw
		case errors.As(rerr, &pe) && pe.Problem.Class == model.ClassNotFound:
			res.Outcome, res.Detail = model.OutcomeCleared, "deleted at the provider (read as not found after the answer was lost)"
		default:
			res.Outcome, res.Detail = model.OutcomeUnknown, "outcome unknown: read the status before anything else; "+model.Line(rerr.Error(), 200)
		}
		if sendErr != nil {
			res.Detail += "; " + model.Line(sendErr.Error(), 200)
		}
	}
	if res.Outcome != model.OutcomeUnknown {
		if err := r.st.SettleIntent(ru.net, intent, string(res.Outcome), nil, raw); err != nil {
			return res, err
		}
	}
	var ops []store.Op
	if res.Outcome == model.OutcomeCleared {
		gone := res.Doc
		gone.Status, gone.Problem = model.StatusCancelled, nil
		ops = append(ops,
			store.AddEvent(model.Event{Account: acc, Provider: r.acc.Provider, DocID: doc.ID, Number: gone.Number, Status: gone.Status, Kind: "clear", Raw: raw}),
			store.UpsertDocument(gone, raw, time.Time{}))
		res.Doc = gone
	}
	if err := r.st.Enqueue(ru.net, ops...); err != nil {
		return res, err
	}
	return res, ru.record(res)
}

// record puts a deletion's outcome in the action log, with the operator and the reason.
func (ru *run) record(res model.RetryResult) error {
	r := ru.r
	err := r.st.Enqueue(ru.net, store.RecordAction(model.Action{Operator: r.opt.Operator, Fingerprint: r.opt.Fingerprint,
		Kind: model.ActionClear, Account: r.acc.Name, DocID: res.Doc.ID, Reason: r.opt.Reason,
		Outcome: string(res.Outcome) + ": " + res.Detail}))
	if err != nil {
		return err
	}
	return r.st.Flush(ru.net)
}
