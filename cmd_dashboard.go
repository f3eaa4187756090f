package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"

	"emitop/config"
	"emitop/poller"
	"emitop/sandbox"
	"emitop/ui"
)

func runDashboard(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("dashboard", stderr)
	cfgPath, dbPath := storeFlags(fs)
	demo := fs.Bool("demo", false, "show the demo against the built-in sandbox, whatever the configuration")
	bell := fs.Bool("bell", false, "ring the terminal's bell once each time an account's health worsens")
	var triage ui.Triage
	fs.StringVar(&triage.Account, "account", "", "open on this account's view")
	fs.StringVar(&triage.Doc, "doc", "", "open on this document's detail (its number or provider id)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !isTerminal(stdin) || !isTerminal(stdout) || os.Getenv("TERM") == "dumb" {
		return usagef("the dashboard needs a full terminal; without one, `emitop poll --once` prints every account and `emitop history` the events")
	}
	var cfg *config.Config
	if !*demo {
		var err error
		cfg, err = loadConfig(*cfgPath, stderr)
		switch {
		case errors.Is(err, errNoConfig):
			*demo = true
		case err != nil:
			return err
		}
	}
	opts := ui.Options{Operator: "local", Bell: *bell, Triage: triage}
	if *demo {
		d, err := startDemo()
		if err != nil {
			return err
		}
		defer d.close()
		cfg, opts.Demo = d.cfg, true
		if *dbPath == "" {
			*dbPath = d.db
		}
	}
	opts.Location = zone(cfg)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := openStore(ctx, cfg, *dbPath)
	if err != nil {
		return err
	}
	opts.Store = storeLabel(st.Location())
	// The screen shows each account's last error; nothing may write on the terminal.
	x, err := startPolling(cfg, st, poller.Options{Version: version}, false, nil)
	if err != nil {
		st.Close()
		return err
	}
	polled := x.run(ctx)
	prog := tea.NewProgram(ui.New(newBackend(x, st), opts), tea.WithInput(stdin), tea.WithOutput(stdout))
	_, runErr := prog.Run()
	cancel()
	polled()
	if err := closeStore(st); err != nil {
		return err
	}
	if runErr != nil && !errors.Is(runErr, tea.ErrProgramKilled) && !errors.Is(runErr, tea.ErrInterrupted) {
		return runErr
	}
	return nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(file.Fd())
}

// demoSetup is the built-in sandbox the demo polls, and a throwaway history.
type demoSetup struct {
	sb  *sandbox.Sandbox
	cfg *config.Config
	dir string
	db  string
}

// startDemo starts the sandbox's demo scenario on a loopback port, with a new seed each
// time, and a history in a temporary folder that close removes.
func startDemo() (*demoSetup, error) {
	sb, err := sandbox.New(sandbox.Options{Scenario: "demo", Seed: uint64(time.Now().UnixNano())})
	if err != nil {
		return nil, err
	}
	if _, err := sb.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	cfg, err := config.Parse([]byte(sb.ConfigTOML()), func(string) (string, bool) { return "", false }, poller.Providers())
	if err != nil {
		sb.Close()
		return nil, fmt.Errorf("demo config: %w", err)
	}
	dir, err := os.MkdirTemp("", "emitop-demo-")
	if err != nil {
		sb.Close()
		return nil, fmt.Errorf("demo history: %w", err)
	}
	return &demoSetup{sb: sb, cfg: cfg, dir: dir, db: filepath.Join(dir, "emitop.db")}, nil
}

func (d *demoSetup) close() {
	d.sb.Close()
	os.RemoveAll(d.dir)
}
