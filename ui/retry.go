package ui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"emitop/model"
)

// retryPhase is where the retry dialog is.
type retryPhase int

const (
	retryPlanning    retryPhase = iota // waiting for the plan
	retryConfirm                       // the plan is shown: confirm, cancel, details, force
	retryReason                        // typing why the resend is forced
	retryAuthorizing                   // confirmed; asking whether this operator may
	retryRunning
	retryDone
)

// retry is the retry dialog: the plan to confirm, then the batch's progress and results,
// then its summary.
type retry struct {
	st  *styles
	gen int // drops answers meant for an earlier dialog

	phase    retryPhase
	docs     []model.Document // what the operator asked to retry
	marks    string           // how many were marked and hidden by the filter; "" for the cursor's document
	force    bool
	reason   string
	plan     model.RetryPlan
	requests bool   // d: show each document's requests
	note     string // a one-line message in the footer
	noteErr  bool
	input    textinput.Model

	feed       *retryFeed
	cancel     context.CancelFunc
	cancelling bool
	progress   model.RetryProgress
	results    []model.RetryResult
	report     model.RetryReport

	width int
	head  []string
	vp    viewport.Model
}

func newRetry(st *styles) retry {
	vp := viewport.New()
	vp.MouseWheelEnabled = false
	in := textinput.New()
	in.Prompt = "reason: "
	in.Placeholder = "why resend past the verdict (recorded)"
	in.CharLimit = 200
	return retry{st: st, vp: vp, input: in}
}

// Messages of the retry dialog; gen ties each to its dialog.
type (
	retryPlanMsg struct {
		gen  int
		plan model.RetryPlan
		err  error
	}
	retryAuthMsg struct {
		gen int
		err error
	}
	retryProgressMsg struct {
		gen    int
		steps  []model.RetryProgress
		closed bool
	}
	retryDoneMsg struct {
		gen    int
		report model.RetryReport
		err    error
	}
	// refusedMsg is a read-only operator's refused action, once it is recorded.
	refusedMsg struct{ err error }
)

// open starts a dialog for docs and asks for its plan; marks says how they were chosen
// ("2 marked, 1 hidden by the filter").
func (r *retry) open(b Backend, o Options, docs []model.Document, marks string) tea.Cmd {
	st, vp, in, w, gen := r.st, r.vp, r.input, r.width, r.gen+1
	*r = retry{st: st, vp: vp, input: in, width: w, gen: gen, docs: docs, marks: marks}
	r.input.SetValue("")
	return r.replan(b, o)
}

// replan asks for the plan again (force changed).
func (r *retry) replan(b Backend, o Options) tea.Cmd {
	r.phase, r.note = retryPlanning, ""
	r.render()
	req := RetryRequest{Docs: r.docs, Force: r.force, Reason: r.reason, Operator: o.Operator, Fingerprint: o.Fingerprint}
	gen := r.gen
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		p, err := b.PlanRetry(ctx, req)
		return retryPlanMsg{gen, p, err}
	}
}

// setPlan receives a plan.
func (r *retry) setPlan(msg retryPlanMsg) {
	r.phase = retryConfirm
	if msg.err != nil {
		r.plan = model.RetryPlan{}
		r.say("cannot plan the retry: "+msg.err.Error(), true)
	} else {
		r.plan = msg.plan
	}
	r.vp.GotoTop()
	r.render()
}

func (r *retry) say(s string, isErr bool) { r.note, r.noteErr = model.Line(s, 0), isErr }

// batchActions are what a batch asks permission for: one action per account, naming the
// document when the account has one in the batch, with the reason when forced.
func batchActions(kind model.ActionKind, docs []model.Document, reason string) []model.Action {
	var out []model.Action
	at := map[string]int{}
	for _, d := range docs {
		i, ok := at[d.Account]
		if !ok {
			at[d.Account] = len(out)
			out = append(out, model.Action{Kind: kind, Account: d.Account, DocID: d.ID, Reason: reason})
			continue
		}
		out[i].DocID = ""
	}
	return out
}

// authorizeAll asks authorize about each action; every one is asked (so each refusal is
// recorded), and the first error refuses the batch.
func authorizeAll(authorize func(context.Context, model.Action) error, actions []model.Action) error {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	var first error
	for _, a := range actions {
		if err := authorize(ctx, a); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// authorize asks Options.Authorize whether the batch may run.
func (r *retry) authorize(o Options) tea.Cmd {
	r.phase, r.note = retryAuthorizing, ""
	gen, actions := r.gen, batchActions(model.RetryAction(r.plan.Force), r.docs, r.plan.Reason)
	if o.Authorize == nil {
		return func() tea.Msg { return retryAuthMsg{gen: gen} }
	}
	return func() tea.Msg { return retryAuthMsg{gen, authorizeAll(o.Authorize, actions)} }
}

// start runs the plan: the batch in one command, its progress through a feed another
// command drains.
func (r *retry) start(b Backend) tea.Cmd {
	ctx, cancel := context.WithCancel(context.Background())
	r.phase, r.cancel, r.feed = retryRunning, cancel, newRetryFeed()
	r.progress = model.RetryProgress{Total: len(r.plan.Items), ETA: r.plan.ETA}
	r.render()
	gen, plan, feed := r.gen, r.plan, r.feed
	run := func() tea.Msg {
		defer cancel()
		rep, err := b.RunRetry(ctx, plan, feed.push)
		feed.close()
		return retryDoneMsg{gen, rep, err}
	}
	return tea.Batch(run, feed.next(gen))
}

// stop cancels a running batch: the document under way finishes and is recorded.
func (r *retry) stop() {
	if r.cancel != nil && !r.cancelling {
		r.cancel()
		r.cancelling = true
		r.say("cancelling: the document under way finishes and is recorded", false)
	}
}

// step takes progress reports.
func (r *retry) step(steps []model.RetryProgress) {
	for _, p := range steps {
		r.progress = p
		if p.Result != nil {
			r.results = append(r.results, *p.Result)
		}
	}
	r.render()
	r.vp.GotoBottom()
}

// finish takes the batch's report.
func (r *retry) finish(msg retryDoneMsg) {
	r.phase, r.report, r.results, r.cancel = retryDone, msg.report, msg.report.Results, nil
	r.progress.Done, r.progress.Current, r.progress.ETA = len(msg.report.Results), "", 0
	if msg.err != nil {
		r.say("the retry stopped: "+msg.err.Error(), true)
	} else {
		r.say("", false)
	}
	r.render()
	r.vp.GotoTop()
}

// retryFeed carries progress from the batch's goroutine to the model without ever
// blocking the engine and without losing a report.
type retryFeed struct {
	mu     sync.Mutex
	steps  []model.RetryProgress
	closed bool
	ready  chan struct{} // holds a token while steps has reports or the feed closed
}

func newRetryFeed() *retryFeed { return &retryFeed{ready: make(chan struct{}, 1)} }

func (f *retryFeed) push(p model.RetryProgress) {
	f.mu.Lock()
	f.steps = append(f.steps, p)
	f.mu.Unlock()
	f.wake()
}

func (f *retryFeed) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wake()
}

func (f *retryFeed) wake() {
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

// next waits for reports and takes all of them at once.
func (f *retryFeed) next(gen int) tea.Cmd {
	return func() tea.Msg {
		<-f.ready
		f.mu.Lock()
		defer f.mu.Unlock()
		steps := f.steps
		f.steps = nil
		return retryProgressMsg{gen, steps, f.closed}
	}
}

func (r *retry) setSize(w, h int) {
	r.width = w
	r.vp.SetWidth(w)
	r.input.SetWidth(max(1, w-len(r.input.Prompt)-1))
	r.render()
	r.vp.SetHeight(max(1, h-len(r.head)))
}

func (r *retry) restyle(st *styles) {
	r.st = st
	r.render()
}

// Column widths of the dialog's tables.
const (
	retryAccountW = 14
	retryNumberW  = 18
	retryVerdictW = 9
	retryOutcomeW = 8
)

// aboutETA says how long a batch takes, coarsely.
func aboutETA(d time.Duration) string {
	if d < time.Second {
		return "under a second"
	}
	return "about " + d.Round(time.Second).String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return count(n) + " " + many
}

// render rebuilds the fixed lines and the viewport's content for the phase.
func (r *retry) render() {
	if r.st == nil || r.width <= 0 {
		return
	}
	switch r.phase {
	case retryRunning, retryDone:
		r.renderRun()
	default:
		r.renderPlan()
	}
}

func (r *retry) renderPlan() {
	st, w := r.st, r.width
	line := func(s string) string { return clip(s, w) }
	p := r.plan
	chosen := ""
	if r.marks != "" {
		chosen = " (" + r.marks + ")"
	}
	title := "Retry " + plural(len(r.docs), "document", "documents") + chosen + ": planning…"
	cost := ""
	if r.phase != retryPlanning {
		title = fmt.Sprintf("Retry %s%s: %d to resend, %d to skip", plural(len(p.Items), "document", "documents"), chosen,
			p.Resends(), len(p.Items)-p.Resends())
		cost = fmt.Sprintf("  %s, %s at the current budget", plural(p.Requests, "request", "requests"), aboutETA(p.ETA))
	}
	head := []string{st.focused.Render(line("▶ " + title)), line(cost)}
	if r.force {
		head = append(head, line("  "+st.errText.Render("FORCED")+" past fix and reconcile verdicts · reason: "+model.Line(r.reason, 0)))
	}
	head = append(head, st.colHead.Render(line(fmt.Sprintf("  %s %s %s %3s  %s", fit("ACCOUNT", retryAccountW, false),
		fit("NUMBER", retryNumberW, false), fit("VERDICT", retryVerdictW, false), "ATT", "LAST PROBLEM"))))
	r.head = head

	var body []string
	if r.phase == retryPlanning {
		for _, d := range r.docs {
			body = append(body, line("  "+r.docCells(d, problemOf(&d).Verdict)))
		}
		r.vp.SetContentLines(body)
		return
	}
	for _, it := range p.Items {
		body = append(body, line("  "+r.docCells(it.Doc, it.Verdict)))
		what, style := "skip", st.dim
		if it.Resend {
			what, style = "resend", st.bold
			if it.Forced {
				what, style = "FORCED resend", st.errText
			}
		}
		body = append(body, line("    → "+style.Render(what)+": "+model.Line(reasonText(it.Why), 0)))
		if !r.requests {
			continue
		}
		for _, rq := range it.Requests {
			body = append(body, wrap(model.Sanitize(rq.Method+" "+rq.URL, false), w, "      ")...)
			body = append(body, wrap(model.Sanitize(strings.Join(rq.Header, " · "), false), w, "        ")...)
			if rq.Body != "" {
				body = append(body, wrap(model.Sanitize(rq.Body, false), w, "        ")...)
			}
		}
	}
	if len(p.Items) == 0 && r.note == "" {
		body = append(body, line(st.dim.Render("  nothing to plan")))
	}
	r.vp.SetContentLines(body)
}

// docCells is a document's account, number, verdict, attempts and last problem.
func (r *retry) docCells(d model.Document, v model.Verdict) string {
	number := d.Number
	if number == "" {
		number = d.ID
	}
	verdict := string(v)
	if verdict == "" {
		verdict = "—"
	}
	last := "none recorded"
	if p := d.Problem; p != nil {
		code := p.Code
		if code == "" {
			code = string(p.Class)
		}
		last = model.Line(code+" "+p.Message, 0)
	}
	return fmt.Sprintf("%s %s %s %3d  %s", fit(model.Line(d.Account, 0), retryAccountW, false),
		fit(shortNumber(model.Line(number, 0), retryNumberW), retryNumberW, false), paint(r.st.verdict, v, fit(verdict, retryVerdictW, false)),
		d.Attempts, last)
}

// reasonText is the engine's reason as the dialog says it: the fact, and for a document
// the operator may force, the key that does it.
func reasonText(why model.RetryReason) string {
	if why.Forcible() {
		return why.String() + " (f forces it, with a reason)"
	}
	return why.String()
}

// detailText is what the dialog says of how a document ended: for one the policy
// skipped, its reason as the dialog words it.
func detailText(res model.RetryResult) string {
	if res.Why.Kind != 0 {
		return reasonText(res.Why)
	}
	return res.Detail
}

// outcomeStyles colour each outcome; the word itself carries the meaning without colour.
func (r *retry) outcomeStyle(o model.Outcome) lipgloss.Style {
	switch o {
	case model.OutcomeAccepted:
		return r.st.level[levelOK]
	case model.OutcomeRejected:
		return r.st.errText
	case model.OutcomeUnknown:
		return r.st.level[levelLow]
	}
	return r.st.dim
}

// outcomeSummary is the counts by outcome.
func outcomeSummary(rep model.RetryReport) string {
	parts := make([]string, len(model.Outcomes))
	for i, o := range model.Outcomes {
		parts[i] = fmt.Sprintf("%d %s", rep.Count(o), o)
	}
	return strings.Join(parts, ", ")
}

func (r *retry) renderRun() {
	st, w := r.st, r.width
	line := func(s string) string { return clip(s, w) }
	pr := r.progress
	var head []string
	if r.phase == retryDone {
		head = append(head, st.focused.Render(line("▶ Retry finished: "+outcomeSummary(r.report))))
	} else {
		head = append(head, st.focused.Render(line(fmt.Sprintf("▶ Retrying %s: %d done · %s left",
			plural(pr.Total, "document", "documents"), pr.Done, strings.TrimPrefix(aboutETA(pr.ETA), "about ")))))
	}
	bar := min(40, max(10, w-40))
	full := 0
	if pr.Total > 0 {
		full = min(bar, pr.Done*bar/pr.Total)
	}
	status := ""
	switch {
	case r.phase == retryDone:
		status = fmt.Sprintf("%s in %s", plural(r.report.Requests, "request", "requests"), r.report.Elapsed.Round(100*time.Millisecond))
		if r.report.Cancelled {
			status += " · cancelled"
		}
	case pr.Current != "":
		status = "working on " + model.Line(r.numberOf(pr.Current), 40)
	}
	head = append(head, line(fmt.Sprintf("  [%s%s] %d/%d  %s", strings.Repeat("█", full), strings.Repeat("░", bar-full), pr.Done, pr.Total, status)))
	head = append(head, st.colHead.Render(line(fmt.Sprintf("  %s %s %s %s", fit("RESULT", retryOutcomeW, false),
		fit("ACCOUNT", retryAccountW, false), fit("NUMBER", retryNumberW, false), "DETAIL"))))
	r.head = head

	var body []string
	for _, res := range r.results {
		number := res.Doc.Number
		if number == "" {
			number = res.Doc.ID
		}
		detail := model.Line(detailText(res), 0)
		if res.Forced {
			detail = "forced · " + detail
		}
		body = append(body, line("  "+r.outcomeStyle(res.Outcome).Render(fit(string(res.Outcome), retryOutcomeW, false))+" "+
			fit(model.Line(res.Doc.Account, 0), retryAccountW, false)+" "+fit(shortNumber(model.Line(number, 0), retryNumberW), retryNumberW, false)+" "+detail))
	}
	if len(body) == 0 {
		body = append(body, line(st.dim.Render("  no document finished yet")))
	}
	r.vp.SetContentLines(body)
}

// numberOf is the number of the batch's document id, or the id.
func (r *retry) numberOf(id string) string {
	for _, it := range r.plan.Items {
		if it.Doc.ID == id && it.Doc.Number != "" {
			return it.Doc.Number
		}
	}
	return id
}

// status is the footer's first line in the dialog.
func (r *retry) status() string {
	if r.phase == retryReason && r.note == "" {
		return r.input.View()
	}
	if r.note != "" {
		if r.noteErr {
			return r.st.errText.Render("error: " + r.note)
		}
		return r.note
	}
	switch r.phase {
	case retryConfirm:
		if r.plan.Resends() == 0 {
			return "nothing to resend (f forces past fix and reconcile verdicts) · esc back"
		}
		return fmt.Sprintf("Resend %s? y/enter confirm · n/esc cancel · d requests · f force",
			plural(r.plan.Resends(), "document", "documents"))
	case retryAuthorizing:
		return "starting…"
	case retryRunning:
		return "esc cancels: the document under way finishes and is recorded"
	case retryDone:
		return "marks cleared; the next poll shows the new states · enter or esc returns"
	}
	return ""
}

// lines renders the dialog in h lines.
func (r *retry) lines(h int) []string {
	out := append([]string(nil), r.head...)
	if rest := h - len(out); rest > 0 {
		r.vp.SetHeight(rest)
		out = append(out, strings.Split(r.vp.View(), "\n")...)
	}
	return pad(out, h)
}

// scroll moves the viewport by n lines (negative: up).
func (r *retry) scroll(n int) {
	if n < 0 {
		r.vp.ScrollUp(-n)
	} else {
		r.vp.ScrollDown(n)
	}
}

// retryExit is what the dialog asks of the dashboard after a key: to close it, and what
// to say in the footer then.
type retryExit struct {
	close bool
	say   string
}

// close drops the dialog: an answer still on its way is dropped with it.
func (r *retry) close() {
	r.gen++
	r.phase = retryPlanning
}

// key handles a key in the dialog, by phase.
func (r *retry) key(msg tea.KeyPressMsg, k *keyMap, b Backend, o Options) (tea.Cmd, retryExit) {
	scroll := func() { scrollKey(k, msg, &r.vp) }
	switch r.phase {
	case retryPlanning:
		if key.Matches(msg, k.Cancel) {
			return nil, retryExit{close: true}
		}
	case retryConfirm:
		r.note = ""
		switch {
		case key.Matches(msg, k.Confirm):
			if r.plan.Resends() == 0 {
				r.say("nothing to resend: every document is skipped", true)
				return nil, retryExit{}
			}
			return r.authorize(o), retryExit{}
		case key.Matches(msg, k.Cancel):
			return nil, retryExit{close: true, say: "retry cancelled: nothing sent"}
		case key.Matches(msg, k.Requests):
			r.requests = !r.requests
			r.render()
		case key.Matches(msg, k.Force):
			if r.force {
				r.force, r.reason = false, ""
				return r.replan(b, o), retryExit{}
			}
			r.phase = retryReason
			r.input.SetValue("")
			return r.input.Focus(), retryExit{}
		default:
			scroll()
		}
	case retryReason:
		switch {
		case key.Matches(msg, k.Dismiss):
			r.phase, r.note = retryConfirm, ""
			r.input.Blur()
		case key.Matches(msg, k.Accept):
			reason := strings.TrimSpace(r.input.Value())
			if reason == "" {
				r.say("forcing needs a reason: type why, or esc", true)
				return nil, retryExit{}
			}
			r.input.Blur()
			r.force, r.reason = true, reason
			return r.replan(b, o), retryExit{}
		default:
			r.note = ""
			var cmd tea.Cmd
			r.input, cmd = r.input.Update(msg)
			return cmd, retryExit{}
		}
	case retryRunning:
		if key.Matches(msg, k.Stop) {
			r.stop()
			return nil, retryExit{}
		}
		scroll()
	case retryDone:
		if key.Matches(msg, k.Close) {
			return nil, retryExit{close: true}
		}
		scroll()
	}
	return nil, retryExit{}
}
