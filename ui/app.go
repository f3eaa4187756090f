package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"

	"emitop/model"
)

// screen is what fills the body of the terminal.
type screen int

const (
	screenDashboard screen = iota
	screenAccount
	screenDetail
	screenHistory
	screenHelp
	screenRetry
)

// panel is a part of the dashboard that can hold the focus.
type panel int

const (
	panelAccounts panel = iota
	panelDocuments
)

// inputMode is what the footer's text input is for.
type inputMode int

const (
	inputNone inputMode = iota
	inputFilter
	inputCommand
)

// Minimum terminal size the dashboard lays itself out for: below it, one line says what
// it needs. At 60×14 the accounts panel shows two accounts with their health, budget,
// forecast and rejections, the documents panel five documents with their status and
// verdict, and the header the worst account and why.
const (
	minWidth  = 60
	minHeight = 14
)

// Model is the dashboard's root model: it routes messages to the screens and panels and
// composes the frame. It implements tea.Model.
//
// The large widgets (the key map, the help, the text inputs, the retry dialog and the
// detail's viewport) are held by pointer: Bubble Tea copies the Model onto the heap at every
// Update, and as values they made it 29 KB (now about 2.5 KB).
type Model struct {
	b    Backend
	opts Options
	keys *keyMap
	help *help.Model

	st      *styles
	profile colorprofile.Profile
	noColor bool
	dark    bool

	width, height int
	now           time.Time
	tickGen       int

	snapshots <-chan model.Snapshot
	cancel    func()
	snap      *model.Snapshot
	settled   bool   // every account has been polled once: later changes are news
	triage    Triage // where to open, until a snapshot has answered it

	screen               screen
	helpBack, detailBack screen // where esc goes from the help and from the detail
	focus                panel
	filter               filter

	accounts accounts
	docs     documents
	account  accountView
	detail   detail
	history  history
	retry    *retry
	helpView *viewport.Model

	input *textinput.Model
	mode  inputMode
	flash string
	isErr bool

	top        string                // the header, rendered when it changes
	hints      memo[hintKey, string] // the footer's key line
	status     memo[string, string]  // the footer's first line, input closed
	helpWidth  int                   // the width the help was rendered for
	helpStyles *styles               // the styles it was rendered with
	frame      string
}

// New returns a dashboard reading from b.
func New(b Backend, opts Options) Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st := newStyles(colorprofile.ANSI, false, true)
	keys, hm, in, r, hv := defaultKeys(), help.New(), textinput.New(), newRetry(st), viewport.New()
	hv.MouseWheelEnabled = false
	loc := location(opts)
	m := Model{
		b: b, opts: opts, keys: &keys, help: &hm,
		st: st, profile: colorprofile.ANSI, dark: true,
		now: opts.Now(), tickGen: 1,
		focus:    panelDocuments,
		accounts: newAccounts(st), docs: newDocuments(st), account: newAccountView(st, loc),
		detail: newDetail(st, loc), history: newHistory(st, loc),
		retry:    &r,
		helpView: &hv,
		input:    &in,
	}
	m.triage = opts.Triage
	m.restyle()
	m.tick()
	return m
}

// Init subscribes to snapshots, starts the clock and asks the terminal for its background.
func (m Model) Init() tea.Cmd {
	return tea.Batch(subscribe(m.b), tick(m.tickGen), tea.RequestBackgroundColor)
}

// View joins the frame composed by the last Update.
func (m Model) View() tea.View {
	v := tea.NewView(m.frame)
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "emitop"
	return v
}

// Update handles one message and composes the next frame.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.compose()
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.resize()
	case tea.ColorProfileMsg:
		m.profile = msg.Profile
		m.restyle()
	case tea.EnvMsg:
		m.noColor = msg.Getenv("NO_COLOR") != ""
		m.restyle()
	case tea.BackgroundColorMsg:
		m.dark = msg.IsDark()
		m.restyle()
	case tickMsg:
		if msg.gen != m.tickGen {
			return nil
		}
		m.tick()
		return tick(m.tickGen)
	case subscribedMsg:
		m.snapshots, m.cancel = msg.snapshots, msg.cancel
		return next(m.snapshots)
	case snapshotMsg:
		cmd := m.setSnapshot(msg.snap)
		if m.snapshots != nil {
			cmd = tea.Batch(cmd, next(m.snapshots))
		}
		return cmd
	case closedMsg:
		m.say("the poller stopped; data is no longer updated", true)
	case accountDataMsg:
		if msg.account != m.account.name {
			return nil
		}
		if m.account.setData(msg) {
			return m.account.update(m.b, m.account.sum)
		}
	case docEventsMsg:
		if m.detail.doc.Account == msg.key.account && m.detail.doc.ID == msg.key.id {
			m.detail.setEvents(msg.events, msg.err)
		}
	case historyMsg:
		if msg.req == eventRequest(m.filter) {
			m.history.setEvents(msg.events, msg.err)
			m.history.setFilter(m.filter)
		}
	case retryPlanMsg:
		if msg.gen == m.retry.gen && m.retry.phase == retryPlanning {
			m.retry.setPlan(msg)
		}
	case retryAuthMsg:
		if msg.gen != m.retry.gen || m.retry.phase != retryAuthorizing {
			return nil
		}
		if msg.err != nil {
			m.retry.phase = retryConfirm
			m.retry.say("refused: "+msg.err.Error(), true)
			return nil
		}
		return m.retry.start(m.b)
	case retryProgressMsg:
		if msg.gen != m.retry.gen || m.retry.phase != retryRunning {
			return nil
		}
		m.retry.step(msg.steps)
		if !msg.closed {
			return m.retry.feed.next(msg.gen)
		}
	case retryDoneMsg:
		if msg.gen == m.retry.gen {
			m.docs.clearMarks()
			m.docs.retried(msg.report.Results)
			m.retry.finish(msg)
		}
	case refusedMsg:
		text := "read-only: viewers see everything and change nothing"
		if msg.err != nil {
			text = "refused: " + msg.err.Error()
		}
		m.say(text, true)
	case tea.MouseWheelMsg:
		m.wheel(msg.Mouse())
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	return nil
}

// setSnapshot takes a new snapshot: the accounts worst first, the documents, the account
// view's account (read again after a poll), the header; with --bell, a worse health rings.
// The layout changes only when the number of accounts did.
func (m *Model) setSnapshot(s model.Snapshot) tea.Cmd {
	worse := m.worsened(&s)
	m.snap = &s
	accountRows := len(m.accounts.items)
	m.accounts.setAccounts(s.Accounts)
	n := 0
	for i := range s.Accounts {
		n += len(s.Accounts[i].Documents)
	}
	docs := make([]*model.Document, 0, n)
	for i := range s.Accounts {
		for j := range s.Accounts[i].Documents {
			docs = append(docs, &s.Accounts[i].Documents[j])
		}
	}
	m.docs.setDocuments(docs)
	if !m.settled {
		// Until every account has been polled, what arrives is the state the operator
		// first sees, not news.
		m.settled = true
		for i := range s.Accounts {
			m.settled = m.settled && !s.Accounts[i].LastPoll.IsZero()
		}
		m.docs.setBaseline(s.At)
	}
	if len(m.accounts.items) != accountRows {
		m.layoutDashboard()
	}
	m.renderHeader()
	cmd := m.openTriage()
	if m.screen == screenAccount || m.account.name != "" {
		sum, _ := m.accounts.find(m.account.name)
		cmd = tea.Batch(cmd, m.account.update(m.b, sum))
	}
	if worse && m.opts.Bell {
		cmd = tea.Batch(cmd, tea.Raw("\a"))
	}
	return cmd
}

// worsened reports whether an account's health is worse in s than in the snapshot shown.
func (m *Model) worsened(s *model.Snapshot) bool {
	if m.snap == nil {
		return false
	}
	was := make(map[string]int, len(m.snap.Accounts))
	for _, a := range m.snap.Accounts {
		was[a.Account.Name] = healthRank(a.Health)
	}
	for _, a := range s.Accounts {
		if r, ok := was[a.Account.Name]; ok && healthRank(a.Health) > r {
			return true
		}
	}
	return false
}

func (m *Model) tick() {
	m.now = m.opts.Now()
	m.accounts.tick(m.now)
	m.docs.tick(m.now)
	m.detail.tick(m.now)
	m.account.tick(m.now)
	m.renderHeader()
}

// renderHeader renders the header; it changes with the clock, a snapshot, the size or the
// styles, not with a cursor move.
func (m *Model) renderHeader() {
	if m.width > 0 {
		var worst *summary
		if len(m.accounts.items) > 0 {
			worst = &m.accounts.items[0]
		}
		m.top = header(m.st, m.opts, m.snap, worst, m.now, m.width)
	}
}

// restyle rebuilds the styles after the profile, NO_COLOR or the background changed.
func (m *Model) restyle() {
	st := newStyles(m.profile, m.noColor, m.dark)
	m.st = st
	m.accounts.restyle(st)
	m.docs.restyle(st)
	m.detail.restyle(st)
	m.account.restyle(st)
	m.history.restyle(st)
	m.retry.restyle(st)
	m.help.Styles = st.help
	is := textinput.Styles{
		Focused: textinput.StyleState{Prompt: st.bold, Text: lipgloss.NewStyle(), Placeholder: st.dim, Suggestion: st.dim},
		Blurred: textinput.StyleState{Prompt: st.dim, Text: st.dim, Placeholder: st.dim, Suggestion: st.dim},
		Cursor:  textinput.CursorStyle{Color: lipgloss.NoColor{}, Shape: tea.CursorBlock},
	}
	m.input.SetStyles(is)
	m.renderHeader()
}

// bodyHeight is the rows between the header and the two footer lines.
func (m *Model) bodyHeight() int { return max(0, m.height-3) }

// split divides the dashboard's body between accounts and documents.
func (m *Model) split() (accountsH, docsH int) {
	body := m.bodyHeight()
	want := 2 + max(1, len(m.accounts.items))
	accountsH = min(want, max(4, body*2/5))
	accountsH = max(0, min(accountsH, body-5))
	return accountsH, body - accountsH
}

// resize lays every screen out for the terminal's size.
func (m *Model) resize() {
	if m.width <= 0 || m.height <= 0 {
		return
	}
	m.layoutDashboard()
	m.detail.setSize(m.width)
	m.account.setSize(m.width)
	m.history.setSize(m.width, m.bodyHeight())
	m.retry.setSize(m.width, m.bodyHeight())
	m.help.SetWidth(m.width)
	m.helpView.SetWidth(m.width)
	m.input.SetWidth(max(1, m.width-4)) // the prompt, the cursor and a cell to spare
	m.renderHeader()
}

// layoutDashboard divides the dashboard's body between accounts and documents.
func (m *Model) layoutDashboard() {
	if m.width <= 0 || m.height <= 0 {
		return
	}
	ah, dh := m.split()
	m.accounts.setSize(m.width, ah)
	m.docs.setSize(m.width, dh)
}

// say shows a one-line message in the footer until the next key.
func (m *Model) say(s string, isErr bool) {
	m.flash, m.isErr = model.Line(s, 0), isErr
}

func (m *Model) quit() tea.Cmd {
	m.tickGen++ // any tick still in flight is dropped
	m.retry.stop()
	if m.cancel != nil {
		cancel := m.cancel
		return tea.Sequence(func() tea.Msg { cancel(); return nil }, tea.Quit)
	}
	return tea.Quit
}

// key routes a key press: the text input first, then global keys, then the screen.
func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	if msg.String() == "ctrl+c" {
		return m.quit()
	}
	if m.mode != inputNone {
		return m.inputKey(msg)
	}
	if m.screen == screenRetry {
		return m.retryKey(msg)
	}
	m.flash = ""
	if m.screen == screenDashboard {
		// The operator acts with the documents in view: what they show has been seen.
		m.docs.ack()
	}
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit()
	case key.Matches(msg, k.Help):
		if m.screen == screenHelp {
			m.screen = m.helpBack
		} else {
			m.openHelp()
		}
		return nil
	case key.Matches(msg, k.Command):
		return m.openInput(inputCommand, ":", "")
	case key.Matches(msg, k.Filter) && (m.screen == screenDashboard || m.screen == screenHistory):
		m.focus = panelDocuments
		return m.openInput(inputFilter, "/", m.filter.text)
	case key.Matches(msg, k.Refresh):
		m.say("refresh requested", false)
		return refresh(m.b)
	case key.Matches(msg, k.Back):
		return m.escape()
	case key.Matches(msg, k.Copy, k.CopyID):
		return m.copy(key.Matches(msg, k.CopyID))
	}
	switch m.screen {
	case screenDashboard:
		return m.dashboardKey(msg)
	case screenAccount:
		return m.accountKey(msg)
	case screenDetail:
		scrollKey(m.keys, msg, m.detail.vp)
	case screenHistory:
		return m.historyKey(msg)
	case screenHelp:
		scrollKey(m.keys, msg, m.helpView)
	}
	return nil
}

// escape goes back one level: help or detail to where they came from, the account view
// and the history to the dashboard (the cursor where it was), and on the dashboard it
// clears the filter.
func (m *Model) escape() tea.Cmd {
	switch m.screen {
	case screenHelp:
		m.screen = m.helpBack
	case screenDetail:
		m.screen = m.detailBack
	case screenHistory, screenAccount:
		m.screen = screenDashboard
	case screenDashboard:
		if !m.filter.empty() {
			m.setFilter(filter{})
			m.say("filter cleared", false)
		}
	}
	return nil
}

// copy puts what is under the cursor on the clipboard through the terminal (OSC 52, which
// reaches the operator's own clipboard over SSH too): a document's number (its id when it
// has none, or with id), an account's name. Only ever on the key: nothing is copied
// behind the operator's back.
func (m *Model) copy(id bool) tea.Cmd {
	var text, what string
	doc := func(d *model.Document) {
		text, what = d.Number, "number"
		if id || text == "" {
			text, what = d.ID, "id"
		}
	}
	switch m.screen {
	case screenDashboard:
		if m.focus == panelAccounts {
			if name, ok := m.accounts.selectedAccount(); ok {
				text, what = name, "account name"
			}
		} else if d, ok := m.docs.selected(); ok {
			doc(d)
		}
	case screenDetail:
		doc(&m.detail.doc)
	case screenHistory:
		if e, ok := m.history.selected(); ok {
			d := m.documentOf(e)
			doc(&d)
		}
	case screenAccount:
		text, what = m.account.name, "account name"
	}
	if text == "" {
		m.say("nothing to copy here", true)
		return nil
	}
	m.say(fmt.Sprintf("copied the %s %s (through the terminal; it must allow OSC 52)", what, model.Line(text, 60)), false)
	return tea.SetClipboard(text)
}

// navigate applies a movement key to a list; any other key leaves it as it is.
func (m *Model) navigate(msg tea.KeyPressMsg, r *rows) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Up):
		r.move(-1)
	case key.Matches(msg, k.Down):
		r.move(1)
	case key.Matches(msg, k.Top):
		r.jump(0)
	case key.Matches(msg, k.Bottom):
		r.jump(r.n - 1)
	case key.Matches(msg, k.PageUp):
		r.move(-r.page())
	case key.Matches(msg, k.PageDown):
		r.move(r.page())
	}
}

func (m *Model) dashboardKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Tab):
		m.focus = 1 - m.focus
	case m.focus == panelAccounts && key.Matches(msg, k.Enter):
		if s, ok := m.accounts.selected(); ok {
			m.accounts.list.hold()
			return m.openAccount(s)
		}
	case m.focus == panelAccounts:
		m.navigate(msg, &m.accounts.list)
	case key.Matches(msg, k.Sort):
		m.docs.cycleSort()
	case key.Matches(msg, k.SortDir):
		m.docs.flipSort()
	case key.Matches(msg, k.Mark):
		m.docs.toggleMark()
	case key.Matches(msg, k.MarkAll):
		switch {
		case len(m.docs.view) == 0:
			m.say("no document shown to mark", true)
		case m.docs.markView():
			m.say(m.docs.marksText(), false)
		default:
			m.say("marks of the documents shown cleared", false)
		}
	case key.Matches(msg, k.Retry):
		return m.openRetry()
	case key.Matches(msg, k.Enter):
		if d, ok := m.docs.selected(); ok {
			m.docs.list.hold()
			return m.openDetail(*d, screenDashboard)
		}
	default:
		m.navigate(msg, &m.docs.list)
	}
	return nil
}

// openAccount shows an account in full.
func (m *Model) openAccount(s *summary) tea.Cmd {
	m.screen = screenAccount
	return m.account.open(m.b, s)
}

// accountKey handles a key in the account view: enter lists its documents.
func (m *Model) accountKey(msg tea.KeyPressMsg) tea.Cmd {
	if key.Matches(msg, m.keys.Enter) {
		f := filter{account: m.account.name}
		m.screen, m.focus = screenDashboard, panelDocuments
		return m.setFilter(f)
	}
	scrollKey(m.keys, msg, m.account.vp)
	return nil
}

// scrollKey applies a movement key to a viewport: the detail screen, the account view,
// the help and the retry dialog scroll alike.
func scrollKey(k *keyMap, msg tea.KeyPressMsg, vp *viewport.Model) {
	switch {
	case key.Matches(msg, k.Up):
		vp.ScrollUp(1)
	case key.Matches(msg, k.Down):
		vp.ScrollDown(1)
	case key.Matches(msg, k.Top):
		vp.GotoTop()
	case key.Matches(msg, k.Bottom):
		vp.GotoBottom()
	case key.Matches(msg, k.PageUp):
		vp.PageUp()
	case key.Matches(msg, k.PageDown):
		vp.PageDown()
	}
}

func (m *Model) historyKey(msg tea.KeyPressMsg) tea.Cmd {
	if key.Matches(msg, m.keys.Enter) {
		if e, ok := m.history.selected(); ok {
			return m.openDetail(m.documentOf(e), screenHistory)
		}
		return nil
	}
	m.navigate(msg, &m.history.list)
	return nil
}

// documentOf finds an event's document in the current snapshot, or describes it from the
// event when it is no longer pending or rejected.
func (m *Model) documentOf(e *model.Event) model.Document {
	if m.snap != nil {
		for _, a := range m.snap.Accounts {
			if a.Account.Name != e.Account {
				continue
			}
			for _, d := range a.Documents {
				if d.ID == e.DocID {
					return d
				}
			}
		}
	}
	return model.Document{Account: e.Account, Provider: e.Provider, ID: e.DocID, Number: e.Number,
		Status: e.Status, Problem: e.Problem, FirstSeen: e.At, Changed: e.At}
}

func (m *Model) openDetail(d model.Document, from screen) tea.Cmd {
	d.Attempts = m.docs.attemptsOf(&d)
	m.detailBack, m.screen = from, screenDetail
	m.detail.open(d)
	return fetchDocEvents(m.b, keyOf(&d))
}

func (m *Model) openHistory() tea.Cmd {
	m.screen = screenHistory
	m.history.load()
	return fetchEvents(m.b, eventRequest(m.filter))
}

// setFilter applies a filter to the documents and the history, reloading the history when
// the query it needs changed.
func (m *Model) setFilter(f filter) tea.Cmd {
	reload := eventRequest(f) != eventRequest(m.filter)
	m.filter = f
	m.docs.setFilter(f)
	m.history.setFilter(f)
	if reload && m.screen == screenHistory {
		return m.openHistory()
	}
	return nil
}

func (m *Model) openInput(mode inputMode, prompt, value string) tea.Cmd {
	m.mode = mode
	m.input.Prompt = prompt
	var completions []string
	if mode == inputCommand {
		completions = m.completions()
	}
	m.input.ShowSuggestions = true // SetSuggestions matches only while it is set
	m.input.SetSuggestions(completions)
	m.input.ShowSuggestions = mode == inputCommand
	m.input.SetValue(value)
	m.input.CursorEnd()
	return m.input.Focus()
}

func (m *Model) closeInput() {
	m.mode = inputNone
	m.input.Blur()
	m.input.SetValue("")
}

// inputKey handles a key while the filter or command line is open.
func (m *Model) inputKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "esc":
		if m.mode == inputFilter {
			f := m.filter
			f.text = ""
			m.setFilter(f)
		}
		m.closeInput()
		return nil
	case "enter":
		mode, text := m.mode, m.input.Value()
		m.closeInput()
		if mode == inputCommand {
			return m.run(text)
		}
		return nil
	}
	var cmd tea.Cmd
	*m.input, cmd = m.input.Update(msg)
	if m.mode == inputFilter {
		f := m.filter
		f.text = strings.ToLower(strings.TrimSpace(m.input.Value()))
		if f != m.filter {
			return tea.Batch(cmd, m.setFilter(f))
		}
	}
	return cmd
}

// completions is everything `:` completes to: each command, and each command with an
// argument followed by every value the snapshot offers for it.
func (m *Model) completions() []string {
	var out []string
	for _, c := range commands {
		switch c.arg {
		case "":
			out = append(out, c.name)
		default:
			for _, v := range m.argValues(c.name) {
				out = append(out, c.name+" "+v)
			}
		}
	}
	return out
}

// argValues is what a command's argument may be: the accounts' names, or their providers.
func (m *Model) argValues(cmd string) []string {
	if m.snap == nil {
		return nil
	}
	var out []string
	for _, a := range m.snap.Accounts {
		v := a.Account.Name
		if cmd == "provider" {
			v = a.Account.Provider
		}
		if v != "" && !slices.Contains(out, v) && !strings.ContainsAny(v, " \t") {
			out = append(out, v)
		}
	}
	return out
}

// run executes a `:` command; an error shows on one line in the footer.
func (m *Model) run(text string) tea.Cmd {
	inv, err := parseCommand(text)
	if err != nil {
		m.say(err.Error(), true)
		return nil
	}
	f := m.filter
	switch inv.name {
	case "rejected":
		f.status = model.StatusRejected
	case "pending":
		f.status = model.StatusPending
	case "account":
		if !m.hasAccount(inv.arg) {
			m.say(fmt.Sprintf("no account named %q", model.Line(inv.arg, 30)), true)
			return nil
		}
		f.account = inv.arg
	case "provider":
		if known := m.argValues("provider"); !slices.Contains(known, inv.arg) {
			m.say(fmt.Sprintf("no account of provider %q (here: %s)", model.Line(inv.arg, 20), model.Line(strings.Join(known, ", "), 80)), true)
			return nil
		}
		f.provider = inv.arg
	case "all":
		f = filter{}
	case "history":
		m.setFilter(f)
		return m.openHistory()
	case "dashboard":
		m.screen = screenDashboard
		return nil
	case "help":
		if m.screen != screenHelp {
			m.openHelp()
		}
		return nil
	case "quit":
		return m.quit()
	}
	if m.screen != screenHistory {
		m.screen = screenDashboard
		m.focus = panelDocuments
	}
	return m.setFilter(f)
}

func (m *Model) hasAccount(name string) bool {
	if m.snap == nil {
		return false
	}
	for _, a := range m.snap.Accounts {
		if a.Account.Name == name {
			return true
		}
	}
	return false
}

// wheelStep is how many rows one wheel notch scrolls.
const wheelStep = 3

// wheel scrolls what is under the mouse.
func (m *Model) wheel(ms tea.Mouse) {
	step := wheelStep
	switch ms.Button {
	case tea.MouseWheelUp:
		step = -step
	case tea.MouseWheelDown:
	default:
		return
	}
	switch m.screen {
	case screenDashboard:
		ah, _ := m.split()
		if ms.Y >= 1 && ms.Y < 1+ah {
			m.accounts.list.move(step)
		} else {
			m.docs.ack()
			m.docs.list.move(step)
		}
	case screenAccount:
		m.account.scroll(step)
	case screenDetail:
		m.detail.scroll(step)
	case screenHistory:
		m.history.list.move(step)
	case screenHelp:
		if step < 0 {
			m.helpView.ScrollUp(-step)
		} else {
			m.helpView.ScrollDown(step)
		}
	case screenRetry:
		m.retry.scroll(step)
	}
}

// compose renders the frame View returns: the header, the screen and the footer, every line
// no wider than the terminal.
func (m *Model) compose() {
	w, h := m.width, m.height
	if w <= 0 || h <= 0 {
		m.frame = ""
		return
	}
	if w < minWidth || h < minHeight {
		m.frame = clip(fmt.Sprintf("too small: %d×%d, emitop needs %d×%d", w, h, minWidth, minHeight), w)
		return
	}
	lines := make([]string, 0, h)
	lines = append(lines, m.top)
	body := m.bodyHeight()
	switch m.screen {
	case screenDashboard:
		ah, dh := m.split()
		lines = append(lines, m.accounts.lines(ah, m.focus == panelAccounts)...)
		lines = append(lines, m.docs.lines(dh, m.focus == panelDocuments)...)
	case screenAccount:
		lines = append(lines, m.account.lines(body)...)
	case screenDetail:
		lines = append(lines, m.detail.lines(body)...)
	case screenHistory:
		lines = append(lines, m.history.lines(body)...)
	case screenHelp:
		lines = append(lines, m.helpLines(body)...)
	case screenRetry:
		lines = append(lines, m.retry.lines(body)...)
		lines = append(lines, clip(m.retry.status(), w), m.hintLine())
		m.frame = strings.Join(lines, "\n")
		return
	}
	lines = append(lines, m.statusLine(), m.hintLine())
	m.frame = strings.Join(lines, "\n")
}

// statusLine is the footer's first line: the open input, a message, or the active filter.
func (m *Model) statusLine() string {
	switch {
	case m.mode != inputNone:
		return clip(m.input.View(), m.width)
	case m.flash != "" && m.isErr:
		return m.status.get(m.st, "error: "+m.flash, m.width, func() string {
			return clip(m.st.errText.Render("error: "+m.flash), m.width)
		})
	case m.flash != "":
		return clip(m.flash, m.width)
	case !m.filter.empty():
		text := "filter: " + m.filter.String()
		return m.status.get(m.st, text, m.width, func() string {
			return clip(text+m.st.dim.Render("  (esc clears)"), m.width)
		})
	}
	return ""
}

// hintKey is what the footer's key line depends on.
type hintKey struct {
	screen   screen
	focus    panel
	mode     inputMode
	phase    retryPhase
	filtered bool
	matches  string // the command line's completions, while it is open
}

// hintLine is the footer's key line: the keys of the screen the operator is on.
func (m *Model) hintLine() string {
	k := hintKey{screen: m.screen, focus: m.focus, mode: m.mode, phase: m.retry.phase, filtered: !m.filter.empty()}
	if m.mode == inputCommand {
		k.matches = strings.Join(m.input.MatchedSuggestions(), "\x00")
	}
	return m.hints.get(m.st, k, m.width, func() string {
		if m.mode == inputCommand {
			return renderHints(m.st, m.keys.inputHints(m.mode), nil, m.matchesText(), m.width)
		}
		return renderHints(m.st, m.keys.screenHints(m.screen, m.focus, m.retry.phase, m.opts.ReadOnly, k.filtered, m.mode),
			m.keys.hintTail(m.screen, m.mode), "", m.width)
	})
}

// matchesText lists the command line's completions: "account sv-main · account sv-2 (+3)".
func (m *Model) matchesText() string {
	ms := m.input.MatchedSuggestions()
	if len(ms) == 0 || m.input.Value() == "" {
		return ""
	}
	shown := ms[:min(len(ms), 4)]
	s := strings.Join(shown, " · ")
	if len(ms) > len(shown) {
		s += fmt.Sprintf(" (+%d)", len(ms)-len(shown))
	}
	return s
}

// openHelp shows the help, from the top.
func (m *Model) openHelp() {
	m.helpBack, m.screen = m.screen, screenHelp
	m.helpView.GotoTop()
}

// keyCell is the width of one key and its description in the help.
const keyCell = 30

// keyColumns lays the help's key bindings out in as many columns as the width holds,
// each group after the other, down the columns.
func keyColumns(st *styles, groups [][]key.Binding, w int) []string {
	var cells []string
	for _, g := range groups {
		for _, b := range g {
			h := b.Help()
			cells = append(cells, st.bold.Render(fit(h.Key, 9, false))+" "+fit(h.Desc, keyCell-10, false))
		}
	}
	cols := max(1, (w-2)/keyCell)
	rows := (len(cells) + cols - 1) / cols
	out := make([]string, rows)
	for i, c := range cells {
		r := i % rows
		if out[r] == "" {
			out[r] = "  "
		}
		out[r] += c
	}
	for i := range out {
		out[i] = clip(out[i], w)
	}
	return out
}

// helpLines is the help screen: generated from the key bindings and the command table,
// scrolled in a viewport with its position in the title.
func (m *Model) helpLines(h int) []string {
	if m.helpWidth != m.width || m.helpStyles != m.st {
		m.helpView.SetContentLines(m.renderHelp())
		m.helpWidth, m.helpStyles = m.width, m.st
	}
	out := []string{""}
	m.helpView.SetHeight(max(1, h-1))
	out[0] = panelTitle(m.st, "Help · keys, commands and what the marks mean", scrollPosition(m.helpView), true, m.width)
	out = append(out, strings.Split(m.helpView.View(), "\n")...)
	return pad(out, h)
}

func (m *Model) renderHelp() []string {
	out := []string{m.st.title.Render(clip("Keys", m.width))}
	out = append(out, keyColumns(m.st, m.keys.FullHelp(), m.width)...)
	out = append(out, "", m.st.title.Render(clip("Commands (type : then the command; tab completes; any unique prefix works)", m.width)))
	for _, c := range commands {
		name := ":" + c.name
		if c.arg != "" {
			name += " " + c.arg
		}
		out = append(out, clip(fmt.Sprintf("  %s %s", m.st.bold.Render(fmt.Sprintf("%-16s", name)), c.about), m.width))
	}
	out = append(out, "", m.st.title.Render(clip("Marks (each reads without colour)", m.width)))
	for _, l := range []string{
		"Accounts, worst first:  " + sevDown.symbol() + " down  " + sevRefused.symbol() + " credentials refused  " + sevDegraded.symbol() +
			" degraded  " + sevLow.symbol() + " a window below its reserve or out within 10 min  " + sevAction.symbol() + " rejected documents need action",
		"Budget: LOW under 20% left · OUT none left · ? unknown (an account never reached shows its budget as unknown)",
		"Forecast: when the window runs out at the spend of the last few minutes, or \"holds\"",
		"Documents: * marked for a retry · + appeared · ~ changed state, since you last looked at the list",
		"STALE: data older than the account's poll interval. Times carry their zone.",
		"Lists: [12/114] is the cursor's place; ▲ and ▼ count the rows above and below the screen.",
	} {
		out = append(out, wrap(l, m.width, "  ")...)
	}
	return out
}

// openRetry opens the retry dialog for the marked documents, or the one under the cursor
// when none is marked. A read-only operator is refused, and the refusal is recorded by
// Options.Authorize.
func (m *Model) openRetry() tea.Cmd {
	docs := m.docs.marked()
	if len(docs) == 0 {
		if d, ok := m.docs.selected(); ok {
			docs = []model.Document{*d}
		}
	}
	if len(docs) == 0 {
		m.say("no document to retry", true)
		return nil
	}
	marks := ""
	if len(m.docs.marks) > 0 {
		marks = m.docs.marksText()
	}
	if m.opts.ReadOnly {
		if m.opts.Authorize == nil {
			return func() tea.Msg { return refusedMsg{} }
		}
		authorize, actions := m.opts.Authorize, batchActions("retry", docs, "")
		return func() tea.Msg { return refusedMsg{authorizeAll(authorize, actions)} }
	}
	m.screen = screenRetry
	return m.retry.open(m.b, m.opts, docs, marks)
}

// closeRetry leaves the dialog; an answer still on its way is dropped.
func (m *Model) closeRetry() {
	m.retry.gen++
	m.retry.phase = retryPlanning
	m.screen = screenDashboard
}

// retryKey handles a key in the retry dialog.
func (m *Model) retryKey(msg tea.KeyPressMsg) tea.Cmd {
	r, k := m.retry, m.keys
	scroll := func() { scrollKey(k, msg, &r.vp) }
	switch r.phase {
	case retryPlanning:
		if key.Matches(msg, k.Cancel) {
			m.closeRetry()
		}
	case retryConfirm:
		r.note = ""
		switch {
		case key.Matches(msg, k.Confirm):
			if r.plan.Resends() == 0 {
				r.say("nothing to resend: every document is skipped", true)
				return nil
			}
			return r.authorize(m.opts)
		case key.Matches(msg, k.Cancel):
			m.closeRetry()
			m.say("retry cancelled: nothing sent", false)
		case key.Matches(msg, k.Requests):
			r.requests = !r.requests
			r.render()
		case key.Matches(msg, k.Force):
			if r.force {
				r.force, r.reason = false, ""
				return r.replan(m.b, m.opts)
			}
			r.phase = retryReason
			r.input.SetValue("")
			return r.input.Focus()
		default:
			scroll()
		}
	case retryReason:
		switch msg.String() {
		case "esc":
			r.phase, r.note = retryConfirm, ""
			r.input.Blur()
		case "enter":
			reason := strings.TrimSpace(r.input.Value())
			if reason == "" {
				r.say("forcing needs a reason: type why, or esc", true)
				return nil
			}
			r.input.Blur()
			r.force, r.reason = true, reason
			return r.replan(m.b, m.opts)
		default:
			r.note = ""
			var cmd tea.Cmd
			r.input, cmd = r.input.Update(msg)
			return cmd
		}
	case retryRunning:
		if msg.String() == "esc" {
			r.stop()
			return nil
		}
		scroll()
	case retryDone:
		switch msg.String() {
		case "esc", "enter", "q", "y":
			m.closeRetry()
		default:
			scroll()
		}
	}
	return nil
}
