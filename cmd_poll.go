package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"emitop/model"
	"emitop/poller"
)

// shutdownTimeout bounds the final flush of the history when a headless poll stops.
const shutdownTimeout = 10 * time.Second

func runPoll(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("poll", stderr)
	cfgPath, dbPath := storeFlags(fs)
	once := fs.Bool("once", false, "poll every account once, print what was found and exit")
	output := fs.String("o", "text", "output of --once: text or json")
	verbose := fs.Bool("v", false, "log every poll, not only errors and changes of health")
	timeout := fs.Duration("timeout", 2*time.Minute, "with --once: how long the poll may take; accounts not polled by then are reported down (0: no limit)")
	metricsListen := metricsFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *once && *metricsListen != "" {
		return usagef("--metrics-listen serves a running poll: it does not go with --once")
	}
	if *output != "text" && *output != "json" {
		return usagef("-o %q: want text or json", *output)
	}
	cfg, err := loadConfig(*cfgPath, stderr)
	if errors.Is(err, errNoConfig) {
		return usagef("%v (write one, see README.md; `emitop sandbox --config-out FILE` writes one for the sandbox)", err)
	}
	if err != nil {
		return err
	}
	if len(cfg.Accounts) == 0 {
		return usagef("%s: no [[account]] to poll", cfg.Path)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := openStore(ctx, cfg, *dbPath)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := poller.Options{Version: version, OnError: pollFailed(log), OnHistory: historyLogged(log)}
	if *once {
		opts.OnError = nil // the failures are printed with the accounts
	}
	oc, err := newOnCall(cfg, *metricsListen, st, log)
	if err != nil {
		st.Close()
		return err
	}
	defer oc.stop()
	onFleet := fleetLogged(log)
	if *once {
		onFleet = nil
	}
	x, err := startPolling(cfg, st, oc.observe(opts), *once, onFleet)
	if err != nil {
		st.Close()
		return err
	}
	p := x.p
	if *once {
		pollCtx := ctx
		if *timeout > 0 {
			var cancel context.CancelFunc
			pollCtx, cancel = context.WithTimeoutCause(ctx, *timeout, fmt.Errorf("timed out after %v", *timeout))
			defer cancel()
		}
		// Every account no live process polls is taken for the poll; the others are
		// shown as their pollers last wrote them.
		member, leave := context.WithCancel(context.WithoutCancel(ctx))
		joined := x.join(member)
		select {
		case <-x.m.Ready():
		case <-pollCtx.Done():
		}
		snap := shownToo(pollCtx, p, p.PollOnce(pollCtx), 2*cfg.Store.Lease)
		leave()
		joined()
		if err := closeStore(st); err != nil {
			return err
		}
		write := printSnapshot
		if *output == "json" {
			write = printSnapshotJSON
		}
		if err := write(stdout, snap); err != nil {
			return err
		}
		return unhealthy(snap) // an account not polled (interrupted, timed out) is down
	}

	log.Info("polling", "accounts", len(cfg.Accounts), "store", st.Location().String(), "version", version)
	oc.start(p, nil)
	snaps, cancel := p.Hub().Subscribe()
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		logSnapshots(log, snaps)
	}()
	x.run(ctx)()
	oc.stop() // before the history closes: the notifiers record what they sent
	cancel()
	<-logged
	if cerr := closeStore(st); cerr != nil {
		log.Error("history not saved", "err", cerr)
		return cerr
	}
	log.Info("stopped")
	return err
}

// shownToo completes a snapshot of `poll --once` with the accounts another process
// polls, as that one wrote them. One that was alone in its fleet had written nothing: it
// writes every account once it sees this command join, a renewal later, and the command
// reads it at its own next one; within wait, or the account is reported down, not made
// up from nothing.
func shownToo(ctx context.Context, p *poller.Poller, snap model.Snapshot, wait time.Duration) model.Snapshot {
	unseen := func(s model.Snapshot) []int {
		var out []int
		for i, a := range s.Accounts {
			if a.PolledBy == "" && !p.Holds(a.Account.Name) {
				out = append(out, i)
			}
		}
		return out
	}
	end := time.NewTimer(wait)
	defer end.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(unseen(snap)) > 0 {
		select {
		case <-ctx.Done():
		case <-end.C:
		case <-tick.C:
			snap = p.Snapshot()
			continue
		}
		break
	}
	for _, i := range unseen(snap) {
		a := &snap.Accounts[i]
		a.Health, a.Windows, a.Documents, a.LastError = model.HealthDown, nil, nil, nil
		a.Err = "not polled here: another emitop process polls it, and what it found has not reached the store"
	}
	return snap
}

// unhealthy is exit status 1 when an account is not up (down, degraded, its credentials
// refused): a script or a monitor running `poll --once` learns it without parsing.
func unhealthy(snap model.Snapshot) error {
	for _, a := range snap.Accounts {
		if a.Health != model.HealthUp {
			return exitError{1}
		}
	}
	return nil
}

// pollFailed logs a failed poll. The error embeds what the provider answered: sanitized
// and cut to one line, like everything of a provider's that reaches a log.
func pollFailed(log *slog.Logger) func(account string, err error) {
	return func(account string, err error) {
		log.Warn("poll failed", "account", account, "err", model.Line(err.Error(), 300))
	}
}

// historyLogged logs when history stops being saved (the database locked by another
// process, a full disk) and when it is saved again, with what was lost.
func historyLogged(log *slog.Logger) func(model.HistoryGap, string) {
	return func(g model.HistoryGap, reason string) {
		since := g.Since.Format(time.RFC3339)
		if g.Until.IsZero() {
			log.Error("history not saved", "since", since, "err", reason, "waiting", g.Waiting, "lost", g.Lost)
			return
		}
		lvl := slog.LevelInfo
		if g.Lost > 0 {
			lvl = slog.LevelWarn
		}
		log.Log(context.Background(), lvl, "history saved again", "since", since,
			"gap", g.Until.Sub(g.Since).Round(time.Millisecond), "lost", g.Lost)
	}
}

// closer is a history that commits what is queued, then closes (*store.Store, on either
// engine).
type closer interface {
	Flush(ctx context.Context) error
	Close() error
}

// closeStore commits everything queued, then closes the history.
func closeStore(st closer) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return errors.Join(st.Flush(ctx), st.Close())
}

// logSnapshots logs each account's change of health, and every poll at debug level, of
// the accounts this process polls.
func logSnapshots(log *slog.Logger, snaps <-chan model.Snapshot) {
	last := map[string]time.Time{}
	health := map[string]model.Health{}
	for s := range snaps {
		for _, a := range s.Accounts {
			name := a.Account.Name
			if a.PolledBy != "" {
				// Another process polls it, and logs what its polls find; back here, its
				// first poll is logged as a first one.
				delete(last, name)
				delete(health, name)
				continue
			}
			if a.LastPoll.IsZero() || a.LastPoll.Equal(last[name]) {
				continue
			}
			last[name] = a.LastPoll
			rejected, pending := countStatus(a.Documents)
			log.Debug("polled", "account", name, "health", a.Health, "pending", pending, "rejected", rejected,
				"next", a.PollInterval.Round(time.Second))
			if prev, ok := health[name]; ok && prev != a.Health || !ok && a.Health != model.HealthUp {
				lvl := slog.LevelInfo
				if a.Health != model.HealthUp {
					lvl = slog.LevelWarn
				}
				args := []any{"account", name}
				if ok { // an account's first poll comes from no health: it has none before it
					args = append(args, "from", prev)
				}
				log.Log(context.Background(), lvl, "health", append(args, "to", a.Health, "err", a.Err)...)
			}
			health[name] = a.Health
		}
	}
}

func countStatus(docs []model.Document) (rejected, pending int) {
	for _, d := range docs {
		switch d.Status {
		case model.StatusRejected:
			rejected++
		case model.StatusPending:
			pending++
		}
	}
	return rejected, pending
}

// accountSummary is one account in `poll --once -o json`.
type accountSummary struct {
	Name      string               `json:"name"`
	Provider  string               `json:"provider"`
	Up        bool                 `json:"up"` // the poll succeeded
	Health    model.Health         `json:"health"`
	Error     *pollError           `json:"error,omitempty"` // the last poll's failure; absent when it succeeded
	Windows   []model.Window       `json:"windows"`
	Documents map[model.Status]int `json:"documents"`
	Problems  map[model.Class]int  `json:"problems"`
}

// pollError is an account's last failed poll, decoded: the class and verdict of the
// provider's answer, its code and message, and emitop's own line about the failure. A
// failure with no answer (a transport error) is of class unknown and verdict retry.
type pollError struct {
	Class       model.Class   `json:"class"`
	Verdict     model.Verdict `json:"verdict"`
	Code        string        `json:"code"`
	Message     string        `json:"message"`
	Status      int           `json:"status,omitempty"`       // the answer's HTTP status
	WaitSeconds *int64        `json:"wait_seconds,omitempty"` // the wait the answer stated
	Action      string        `json:"action,omitempty"`
	Detail      string        `json:"detail"` // emitop's line: the request, and whether the account is parked or held
}

func decodedPollError(a model.AccountState) *pollError {
	if a.Err == "" && a.LastError == nil {
		return nil
	}
	e := &pollError{Class: model.ClassUnknown, Verdict: model.VerdictRetry, Message: a.Err, Detail: a.Err}
	if p := a.LastError; p != nil {
		e.Class, e.Verdict, e.Code, e.Message, e.Status, e.Action = p.Class, p.Verdict, p.Code, p.Message, p.Status, p.Action
		if p.HasWait {
			w := model.CeilSeconds(p.Wait)
			e.WaitSeconds = &w
		}
	}
	return e
}

func summarize(a model.AccountState) accountSummary {
	s := accountSummary{
		Name: a.Account.Name, Provider: a.Account.Provider, Up: a.Err == "" && !a.LastPoll.IsZero(),
		Health: a.Health, Error: decodedPollError(a), Windows: a.Windows,
		Documents: map[model.Status]int{model.StatusPending: 0, model.StatusRejected: 0},
		Problems:  map[model.Class]int{},
	}
	if s.Windows == nil {
		s.Windows = []model.Window{}
	}
	for _, d := range a.Documents {
		s.Documents[d.Status]++
		if d.Problem != nil && d.Problem.Class != model.ClassOK {
			s.Problems[d.Problem.Class]++
		}
	}
	return s
}

func printSnapshotJSON(w io.Writer, snap model.Snapshot) error {
	out := struct {
		Accounts []accountSummary `json:"accounts"`
	}{Accounts: make([]accountSummary, 0, len(snap.Accounts))}
	for _, a := range snap.Accounts {
		out.Accounts = append(out.Accounts, summarize(a))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func printSnapshot(w io.Writer, snap model.Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, a := range snap.Accounts {
		s := summarize(a)
		if i > 0 {
			fmt.Fprintln(tw)
		}
		state := string(s.Health)
		if s.Error != nil {
			state += ": " + s.Error.Detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Provider, state)
		if a.PolledBy != "" {
			fmt.Fprintf(tw, "  polled\t%s ago by %s\n", time.Since(a.LastPoll).Round(time.Second), model.Line(a.PolledBy, 80))
		}
		if e := s.Error; e != nil && (e.Code != "" || e.Status != 0) {
			line := string(e.Class) + " · " + string(e.Verdict)
			if e.Code != "" {
				line += "  " + e.Code
			}
			if e.Message != "" && e.Message != e.Detail {
				line += "  " + model.Line(e.Message, 120)
			}
			fmt.Fprintf(tw, "  error\t%s\n", line)
		}
		for _, win := range s.Windows {
			fmt.Fprintf(tw, "  window %s\t%s\t%s\t%s\n", win.Label(), figures(win), resetText(win), forecastText(win))
		}
		fmt.Fprintf(tw, "  documents\t%s\n", counts(s.Documents))
		if len(s.Problems) > 0 {
			fmt.Fprintf(tw, "  problems\t%s\n", counts(s.Problems))
		}
	}
	return tw.Flush()
}

// forecastText says when the window runs out at the recent spend: "out in 3m at 12/min",
// "out now", or "holds".
func forecastText(w model.Window) string {
	switch {
	case w.Holds():
		return "holds"
	case w.ExhaustsIn == 0:
		return "out now"
	}
	return fmt.Sprintf("out in %s at %.0f/min", (time.Duration(model.CeilSeconds(w.ExhaustsIn)) * time.Second).String(), w.SpendPerMinute())
}

func figures(w model.Window) string {
	figure := func(n int) string {
		if n == model.Unknown {
			return "?"
		}
		return fmt.Sprint(n)
	}
	return figure(w.Remaining) + "/" + figure(w.Limit) + " left"
}

func resetText(w model.Window) string {
	if !w.HasReset() {
		return ""
	}
	return fmt.Sprintf("reset in %ds", model.CeilSeconds(w.Reset))
}

// counts writes "a 3, b 1", sorted by key.
func counts[K ~string](m map[K]int) string {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
