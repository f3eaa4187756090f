package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"emitop/config"
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
// interrupt still commits what was written), a client for it and a retrier over both.
type accountRun struct {
	acc  *config.Account
	st   *store.Store
	c    *poller.Client
	r    *retry.Retrier
	stop context.CancelFunc
}

// Close closes the history and stops listening for interrupts.
func (a *accountRun) Close() {
	a.st.Close()
	a.stop()
}

// startAccountRun loads the configuration, finds the account called name, opens its
// history and a client for it, and makes the retrier with opt; the context it returns
// ends on an interrupt or SIGTERM. Unless scope is nil (a JSON output), it says there
// which store holds the documents' leases, and so who else may be acting on them. The
// caller closes the run.
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
	if run.c, err = poller.NewClient(*acc, poller.ClientOptions{Version: version}); err == nil {
		run.r, err = retry.New(run.c, st, opt)
	}
	if err != nil {
		run.Close()
		return nil, nil, err
	}
	if scope != nil {
		fmt.Fprintln(scope, storeScope(st.Location()))
	}
	return ctx, run, nil
}

// unconfirmed is the usage error of an act that asks for confirmation when nobody can
// give it: stdin is not a terminal, and neither --yes nor --dry-run was given.
func unconfirmed(stdin io.Reader, dry, yes bool, what string) error {
	if dry || yes || isTerminal(stdin) {
		return nil
	}
	return usagef("stdin is not a terminal: pass --yes to %s without confirmation, or --dry-run", what)
}
