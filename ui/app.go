package ui

import (
	"fmt"
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
	screenDetail
	screenHistory
	screenHelp
	screenRetry
)

// panel is a part of the dashboard that can hold the focus.
type panel int

const (
	panelBudgets panel = iota
	panelDocuments
)

// inputMode is what the footer's text input is for.
type inputMode int

const (
	inputNone inputMode = iota
	inputFilter
	inputCommand
)

// Minimum terminal size the dashboard lays itself out for.
const (
	minWidth  = 40
	minHeight = 10
)

// Model is the dashboard's root model: it routes messages to the screens and panels and
// composes the frame. It implements tea.Model.
//
// The large widgets (the key map, the help, the text inputs, the retry dialog and the
// detail's viewport) are held by pointer: Bubble Tea copies the Model onto the heap at every
// Update, and as values they made it 29 KB (now under 2 KB).
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
	triage    Triage // where to open, until a snapshot has answered it

	seriesBusy, seriesAgain bool
	// seriesAt is, for each window of the snapshot, its account's LastPoll when its series
	// was last asked for: the poller samples windows once per poll, so a series can only
	// have changed when LastPoll did.
	seriesAt map[seriesKey]time.Time

	screen               screen
	helpBack, detailBack screen // where esc goes from the help and from the detail
	focus                panel
	filter               filter

	budgets budgets
	docs    documents
	detail  detail
	history history
	retry   *retry

	input *textinput.Model
	mode  inputMode
	flash string
	isErr bool

	top, keysLine string                   // the header and the footer's key line, rendered when they change
	status        memo[string, string]     // the footer's first line, input closed
	retryKeys     memo[retryPhase, string] // the footer's key line in the retry dialog
	helpScreen    memo[int, []string]      // the help screen, by height
	frame         string
}

// New returns a dashboard reading from b.
func New(b Backend, opts Options) Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st := newStyles(colorprofile.ANSI, false, true)
	keys, hm, in, r := defaultKeys(), help.New(), textinput.New(), newRetry(st)
	m := Model{
		b: b, opts: opts, keys: &keys, help: &hm,
		st: st, profile: colorprofile.ANSI, dark: true,
		now: opts.Now(), tickGen: 1,
		focus:   panelDocuments,
		budgets: newBudgets(st), docs: newDocuments(st), detail: newDetail(st), history: newHistory(st),
		retry: &r,
		input: &in,
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
	case seriesMsg:
		m.budgets.setSeries(msg.series)
		for _, k := range msg.asked {
			if _, ok := msg.series[k]; !ok {
				delete(m.seriesAt, k) // unread: asked for again with the next snapshot
			}
		}
		if msg.err != nil {
			m.say(msg.err.Error(), true)
		}
		m.seriesBusy = false
		if m.seriesAgain {
			return m.fetchSeries()
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

// setSnapshot takes a new snapshot and asks for the sparklines that may have changed with
// it. The layout changes only when the number of budget rows did.
func (m *Model) setSnapshot(s model.Snapshot) tea.Cmd {
	m.snap = &s
	budgetRows := len(m.budgets.items)
	m.budgets.setAccounts(s.Accounts)
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
	if len(m.budgets.items) != budgetRows {
		m.layoutDashboard()
	}
	m.renderHeader()
	return tea.Batch(m.fetchSeries(), m.openTriage())
}

func (m *Model) fetchSeries() tea.Cmd {
	if m.seriesBusy {
		m.seriesAgain = true
		return nil
	}
	if m.snap == nil {
		return nil
	}
	var keys []seriesKey
	at := make(map[seriesKey]time.Time, len(m.seriesAt))
	for _, a := range m.snap.Accounts {
		for _, w := range a.Windows {
			k := seriesKey{a.Account.Name, w.Name}
			at[k] = a.LastPoll
			if last, ok := m.seriesAt[k]; !ok || !last.Equal(a.LastPoll) {
				keys = append(keys, k)
			}
		}
	}
	m.seriesAt = at
	m.budgets.keepSeries(at)
	if len(keys) == 0 {
		return nil
	}
	m.seriesBusy, m.seriesAgain = true, false
	return fetchSeries(m.b, keys, at)
}

func (m *Model) tick() {
	m.now = m.opts.Now()
	m.budgets.tick(m.now)
	m.docs.tick(m.now)
	m.detail.tick(m.now)
	m.renderHeader()
}

// renderHeader renders the header; it changes with the clock, a snapshot, the size or the
// styles, not with a cursor move.
func (m *Model) renderHeader() {
	if m.width > 0 {
		m.top = header(m.st, m.opts, m.snap, m.now, m.width)
	}
}

// renderKeys renders the footer's key line; it changes with the size or the styles only.
func (m *Model) renderKeys() {
	if m.width > 0 {
		m.keysLine = clip(m.help.ShortHelpView(m.keys.ShortHelp()), m.width)
	}
}

// restyle rebuilds the styles after the profile, NO_COLOR or the background changed.
func (m *Model) restyle() {
	st := newStyles(m.profile, m.noColor, m.dark)
	m.st = st
	m.budgets.restyle(st)
	m.docs.restyle(st)
	m.detail.restyle(st)
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
	m.renderKeys()
}

// bodyHeight is the rows between the header and the two footer lines.
func (m *Model) bodyHeight() int { return max(0, m.height-3) }

// split divides the dashboard's body between budgets and documents.
func (m *Model) split() (budgetsH, docsH int) {
	body := m.bodyHeight()
	want := 2 + max(1, len(m.budgets.items))
	budgetsH = min(want, max(4, body*2/5))
	budgetsH = max(0, min(budgetsH, body-5))
	return budgetsH, body - budgetsH
}

// resize lays every screen out for the terminal's size.
func (m *Model) resize() {
	if m.width <= 0 || m.height <= 0 {
		return
	}
	m.layoutDashboard()
	m.detail.setSize(m.width)
	m.history.setSize(m.width, m.bodyHeight())
	m.retry.setSize(m.width, m.bodyHeight())
	m.help.SetWidth(m.width)
	m.input.SetWidth(max(1, m.width-3))
	m.renderHeader()
	m.renderKeys()
}

// layoutDashboard divides the dashboard's body between budgets and documents.
func (m *Model) layoutDashboard() {
	if m.width <= 0 || m.height <= 0 {
		return
	}
	bh, dh := m.split()
	m.budgets.setSize(m.width, bh)
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
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit()
	case key.Matches(msg, k.Help):
		if m.screen == screenHelp {
			m.screen = m.helpBack
		} else {
			m.helpBack, m.screen = m.screen, screenHelp
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
	}
	switch m.screen {
	case screenDashboard:
		return m.dashboardKey(msg)
	case screenDetail:
		m.detailKey(msg)
	case screenHistory:
		return m.historyKey(msg)
	}
	return nil
}

// escape goes back one level: help or detail to where they came from, history to the
// dashboard, and on the dashboard it clears the filter.
func (m *Model) escape() tea.Cmd {
	switch m.screen {
	case screenHelp:
		m.screen = m.helpBack
	case screenDetail:
		m.screen = m.detailBack
	case screenHistory:
		m.screen = screenDashboard
	case screenDashboard:
		if !m.filter.empty() {
			m.setFilter(filter{})
			m.say("filter cleared", false)
		}
	}
	return nil
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
			m.say(fmt.Sprintf("%s marked", count(len(m.docs.marks))), false)
		default:
			m.say("marks of the documents shown cleared", false)
		}
	case key.Matches(msg, k.Retry):
		return m.openRetry()
	case key.Matches(msg, k.Enter):
		if m.focus == panelBudgets {
			if name, ok := m.budgets.selectedAccount(); ok {
				f := m.filter
				f.account = name
				m.setFilter(f)
				m.focus = panelDocuments
			}
			return nil
		}
		if d, ok := m.docs.selected(); ok {
			return m.openDetail(*d, screenDashboard)
		}
	case m.focus == panelBudgets:
		m.navigate(msg, &m.budgets.list)
	default:
		m.navigate(msg, &m.docs.list)
	}
	return nil
}

func (m *Model) detailKey(msg tea.KeyPressMsg) {
	scrollKey(m.keys, msg, m.detail.vp)
}

// scrollKey applies a movement key to a viewport: the detail screen and the retry dialog
// scroll alike.
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
			m.helpBack, m.screen = m.screen, screenHelp
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
		bh, _ := m.split()
		if ms.Y >= 1 && ms.Y < 1+bh {
			m.budgets.list.move(step)
		} else {
			m.docs.list.move(step)
		}
	case screenDetail:
		m.detail.scroll(step)
	case screenHistory:
		m.history.list.move(step)
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
		m.frame = clip(fmt.Sprintf("terminal too small: %d×%d, need %d×%d", w, h, minWidth, minHeight), w)
		return
	}
	lines := make([]string, 0, h)
	lines = append(lines, m.top)
	body := m.bodyHeight()
	switch m.screen {
	case screenDashboard:
		bh, dh := m.split()
		lines = append(lines, m.budgets.lines(bh, m.focus == panelBudgets)...)
		lines = append(lines, m.docs.lines(dh, m.focus == panelDocuments)...)
	case screenDetail:
		lines = append(lines, m.detail.lines(body)...)
	case screenHistory:
		lines = append(lines, m.history.lines(body)...)
	case screenHelp:
		lines = append(lines, m.helpLines(body)...)
	case screenRetry:
		lines = append(lines, m.retry.lines(body)...)
		lines = append(lines, clip(m.retry.status(), w), m.retryKeys.get(m.st, m.retry.phase, w, func() string {
			return clip(m.help.ShortHelpView(m.keys.retryHelp(m.retry.phase)), w)
		}))
		m.frame = strings.Join(lines, "\n")
		return
	}
	lines = append(lines, m.statusLine(), m.keysLine)
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

// helpLines is the help screen, generated from the key bindings and the command table.
func (m *Model) helpLines(h int) []string {
	return m.helpScreen.get(m.st, h, m.width, func() []string { return m.renderHelp(h) })
}

func (m *Model) renderHelp(h int) []string {
	out := []string{panelTitle(m.st, "Keys", true, m.width)}
	for _, l := range strings.Split(m.help.FullHelpView(m.keys.FullHelp()), "\n") {
		out = append(out, clip("  "+l, m.width))
	}
	out = append(out, "", panelTitle(m.st, "Commands (type : then the command; any unique prefix works)", true, m.width))
	for _, c := range commands {
		name := ":" + c.name
		if c.arg != "" {
			name += " " + c.arg
		}
		out = append(out, clip(fmt.Sprintf("  %s %s", m.st.bold.Render(fmt.Sprintf("%-16s", name)), c.about), m.width))
	}
	out = append(out, "", clip(m.st.dim.Render("  Thresholds: OK, LOW (under 20% left), OUT (none left), ? (unknown). STALE: data older than the poll interval."), m.width))
	return pad(out, h)
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
	if m.opts.ReadOnly {
		if m.opts.Authorize == nil {
			return func() tea.Msg { return refusedMsg{} }
		}
		authorize, actions := m.opts.Authorize, batchActions("retry", docs, "")
		return func() tea.Msg { return refusedMsg{authorizeAll(authorize, actions)} }
	}
	m.screen = screenRetry
	return m.retry.open(m.b, m.opts, docs)
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
