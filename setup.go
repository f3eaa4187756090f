package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"emitop/config"
	"emitop/fleet"
	"emitop/model"
	"emitop/poller"
	"emitop/retry"
	"emitop/store"
)

// errNoConfig says that no configuration file exists where emitop looks for one.
var errNoConfig = errors.New("no configuration file")

// loadConfig finds and loads the configuration (--config, else $EMITOP_CONFIG, else the
// XDG path). A path named by flag or variable must exist; the default one may be missing,
// which is errNoConfig. A configuration with problems is printed to stderr, one line per
// problem, and becomes exit status 2.
func loadConfig(flagPath string, stderr io.Writer) (*config.Config, error) {
	path, found := config.Locate(flagPath)
	named := flagPath != "" || os.Getenv("EMITOP_CONFIG") != ""
	if !found && !named {
		return nil, fmt.Errorf("%w at %s", errNoConfig, path)
	}
	cfg, err := config.Load(path, poller.Providers())
	var ce *config.Error
	if errors.As(err, &ce) {
		fmt.Fprintln(stderr, model.Sanitize(ce.Error(), true)) // values from the file, one problem a line
		return nil, exitError{2}
	}
	if err != nil {
		return nil, usagef("%v", err)
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "emitop: warning: "+model.Line(w, 0))
	}
	return cfg, nil
}

// newFlags is a command's flag set: its mistakes are returned, its help goes to stderr.
// It is noted for `emitop completion`, which lists each command's flags from it.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	flagSets.Store(name, fs)
	return fs
}

// storeFlags declares --config and --db, which every command that reads the configuration
// or the history takes, with one wording.
func storeFlags(fs *flag.FlagSet) (cfgPath, dbPath *string) {
	cfgPath = fs.String("config", "", "configuration file (default $EMITOP_CONFIG, else $XDG_CONFIG_HOME/emitop/config.toml)")
	dbPath = fs.String("db", "", "history database: a file, or a postgres:// URL (default: the configuration's store.url, else store.path)")
	return cfgPath, dbPath
}

// parseFlags parses args into fs; a bad flag or any argument left over is a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitError{0} // asked for: the flags are printed, and that is success
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// zone is the time zone every time is shown in: the configuration's, else the local one.
func zone(cfg *config.Config) *time.Location {
	if cfg == nil || cfg.Location == nil {
		return time.Local
	}
	return cfg.Location
}

// storePath is where the history is: dbFlag when given, else the configuration's store
// (its PostgreSQL URL when it names one, else its file).
func storePath(cfg *config.Config, dbFlag string) string {
	if dbFlag != "" {
		return dbFlag
	}
	if cfg.Store.URL != "" {
		return cfg.Store.URL
	}
	return cfg.Store.Path
}

// storeScope names the store in use and who shares its leases and ledger: no two holders
// of one store resend a document at once, but a process on another store knows nothing
// of them.
func storeScope(where store.Location) string {
	if where.Shared {
		return "store: " + where.String() + " (leases shared with every emitop using it, on any host)"
	}
	return "store: " + where.String() + " (leases shared only with emitop processes on this host using this file)"
}

// storeLabel is how the dashboard's header names the store: a local file, or which
// PostgreSQL (never its password).
func storeLabel(where store.Location) string {
	if where.Shared {
		return where.String()
	}
	return "local file"
}

// openHistory opens an existing history, read-only, for the commands that only read it
// (`history`, `report`): --db, else the configuration's store.url or store.path, else the
// default path when there is no configuration. It never creates one: a missing history
// is one clear line. The configuration comes back too (empty when there is none), for its accounts
// and zone.
func openHistory(ctx context.Context, cfgPath, dbPath string, stderr io.Writer) (*config.Config, *store.Store, error) {
	cfg, err := loadConfig(cfgPath, stderr)
	switch {
	case errors.Is(err, errNoConfig) && dbPath == "":
		cfg, err = config.Parse(nil, os.LookupEnv, poller.Providers())
	case errors.Is(err, errNoConfig):
		cfg, err = &config.Config{}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	path := storePath(cfg, dbPath)
	if _, err := os.Stat(path); err != nil && !store.IsURL(path) {
		return nil, nil, fmt.Errorf("no history at %s (emitop poll or the dashboard writes it)", path)
	}
	st, err := store.OpenReadOnly(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// openStore opens the history at dbFlag when given, else the configuration's.
func openStore(ctx context.Context, cfg *config.Config, dbFlag string) (*store.Store, error) {
	return store.Open(ctx, storePath(cfg, dbFlag))
}

// accountRun is what a command acting on one account's documents holds (retry, clear):
// the account, its history (opened on a context that is never cancelled, so that an
// interrupt still commits what was written), a client for it, a retrier over both, and
// its member of the fleet sharing the store: the command sends the account's requests
// itself only while it holds the account's poll lease (no live emitop polls it), and
// has the process that polls it carry out its retry otherwise.
type accountRun struct {
	acc  *config.Account
	st   *store.Store
	c    *poller.Client
	r    *retry.Retrier
	m    *fleet.Member
	here bool // this command holds the account's poll lease
	stop context.CancelFunc
	left func() // leaves the fleet, freeing the account at once
}

// Close leaves the fleet, closes the history and stops listening for interrupts.
func (a *accountRun) Close() {
	if a.left != nil {
		a.left()
	}
	a.st.Close()
	a.stop()
}

// startAccountRun loads the configuration, finds the account called name, opens its
// history and a client for it, joins the fleet and makes the retrier with opt; the
// context it returns ends on an interrupt or SIGTERM. Unless scope is nil (a JSON
// output), it says there which store holds the documents' leases, and so who else may be
// acting on them, and which process will send the requests. The caller closes the run.
func startAccountRun(cfgPath, dbPath, name string, opt retry.Options, scope, stderr io.Writer) (context.Context, *accountRun, error) {
	cfg, err := loadConfig(cfgPath, stderr)
	if errors.Is(err, errNoConfig) {
		return nil, nil, usagef("%v (use --config or $EMITOP_CONFIG)", err)
	}
	if err != nil {
		return nil, nil, err
	}
	var acc *config.Account
	for i := range cfg.Accounts {
		if cfg.Accounts[i].Name == name {
			acc = &cfg.Accounts[i]
		}
	}
	if acc == nil {
		return nil, nil, usagef("no account %q in %s", name, cfg.Path)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	st, err := openStore(context.WithoutCancel(ctx), cfg, dbPath)
	if err != nil {
		stop()
		return nil, nil, err
	}
	run := &accountRun{acc: acc, st: st, stop: stop}
	if run.c, err = poller.NewClient(*acc, poller.ClientOptions{Version: version}); err != nil {
		run.Close()
		return nil, nil, err
	}
	run.m = fleet.New(st, []string{acc.Name}, fleet.Options{Lease: cfg.Store.Lease, Command: true,
		Client: func(string) *poller.Client { return run.c }})
	member, leave := context.WithCancel(context.WithoutCancel(ctx))
	left := make(chan struct{})
	go func() {
		defer close(left)
		run.m.Run(member)
	}()
	run.left = func() {
		leave()
		<-left
	}
	<-run.m.Ready()
	run.here = run.m.Holding(acc.Name) == nil
	opt.Holding = func() error { return run.m.Holding(acc.Name) }
	if run.r, err = retry.New(run.c, st, opt); err != nil {
		run.Close()
		return nil, nil, err
	}
	if scope != nil {
		fmt.Fprintln(scope, storeScope(st.Location()))
		if !run.here {
			fmt.Fprintln(scope, run.elsewhere(ctx))
		}
	}
	return ctx, run, nil
}

// elsewhere says which process polls the account, and so sends its requests.
func (a *accountRun) elsewhere(ctx context.Context) string {
	by := "another emitop process"
	if host, err := a.st.Holder(ctx, a.acc.Name); err == nil && host != "" {
		by = "the emitop at " + model.Line(host, 80)
	}
	return a.acc.Name + " is polled by " + by + ": its requests are sent there, under the account's one budget"
}

// unconfirmed is the usage error of an act that asks for confirmation when nobody can
// give it: stdin is not a terminal, and neither --yes nor --dry-run was given.
func unconfirmed(stdin io.Reader, dry, yes bool, what string) error {
	if dry || yes || isTerminal(stdin) {
		return nil
	}
	return usagef("stdin is not a terminal: pass --yes to %s without confirmation, or --dry-run", what)
}

// pollerProc is a process that polls until stopped (the dashboard, `emitop poll`, `emitop
// serve`): its poller, and its member of the fleet of processes sharing its store, which
// decides which accounts the poller polls and runs the retries others ask of it.
type pollerProc struct {
	p      *poller.Poller
	m      *fleet.Member
	memory *retry.Memory // what the retries of this process remember (sv-dte's DTEs)
}

// startPolling makes the poller and the fleet member of a process using st, with the
// poller's options opt (Share is set here). onError, when set, is told of the fleet's
// trouble with the store.
func startPolling(cfg *config.Config, st *store.Store, opt poller.Options, command bool, onError func(error)) (*pollerProc, error) {
	names := make([]string, len(cfg.Accounts))
	for i, a := range cfg.Accounts {
		names[i] = a.Name
	}
	x := &pollerProc{memory: retry.NewMemory()}
	x.m = fleet.New(st, names, fleet.Options{Lease: cfg.Store.Lease, Command: command, Memory: x.memory, OnError: onError})
	opt.Share = x.m
	p, err := poller.New(cfg.Accounts, st, opt)
	if err != nil {
		return nil, err
	}
	x.p = p
	x.m.Attach(p)
	return x, nil
}

// run polls and keeps the fleet membership until ctx ends; the function it returns
// waits for both to stop (the member has left the fleet by then: close the store after).
func (x *pollerProc) run(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() { x.p.Run(ctx) })
	wg.Go(func() { x.m.Run(ctx) })
	return wg.Wait
}

// join keeps the fleet membership alone until ctx ends (`poll --once` polls by itself);
// the function it returns waits for the member to have left.
func (x *pollerProc) join(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		x.m.Run(ctx)
	}()
	return func() { <-done }
}

// fleetLogged logs what goes wrong between a process and the fleet's store.
func fleetLogged(log *slog.Logger) func(error) {
	return func(err error) { log.Warn("fleet", "err", model.Line(err.Error(), 300)) }
}
