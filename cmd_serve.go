package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"emitop/config"
	"emitop/serve"
	"emitop/store"
	"emitop/ui"
)

func init() {
	register("serve", "serve the dashboard over SSH to the operators in the config", runServe)
}

// shutdownGrace is how long SIGTERM waits for sessions to quit before closing them.
const shutdownGrace = 10 * time.Second

// pollBackend starts the one poll loop for every session (running until ctx ends) and
// returns the dashboard's backend over it and st. It is set by the file that owns the poll
// loop's backend; while it is nil, serve refuses to start.
var pollBackend func(ctx context.Context, cfg *config.Config, st *store.Store) (ui.Backend, error)

func runServe(args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":2222", "address to listen on")
	hostKey := fs.String("host-key", "", "the server's ed25519 host key, created when missing (default $XDG_STATE_HOME/emitop/"+serve.HostKeyName+")")
	cfgPath := fs.String("config", "", "config file (default $EMITOP_CONFIG, else $XDG_CONFIG_HOME/emitop/config.toml)")
	db := fs.String("db", "", "SQLite history (default: the config's store.path)")
	if err := fs.Parse(args); err != nil {
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	path, found := config.Locate(*cfgPath)
	if !found {
		return usagef("no config file at %s: serve needs one with [[operator]] entries (--config)", path)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if *db != "" {
		cfg.Store.Path = *db
	}
	if *hostKey == "" {
		if *hostKey, err = serve.DefaultHostKeyPath(); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := store.Open(ctx, cfg.Store.Path)
	if err != nil {
		return err
	}
	defer st.Close()
	if pollBackend == nil {
		return errors.New("this build has no poll loop to serve")
	}
	b, err := pollBackend(ctx, cfg, st)
	if err != nil {
		return err
	}
	srv, err := serve.New(serve.Options{
		Backend: b, Store: st, Operators: cfg.Operators,
		HostKeyPath: *hostKey, IdleTimeout: cfg.Serve.IdleTimeout, Log: log,
	})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return serveUntil(ctx, srv, *listen, hup, log)
}

// serveUntil serves on listen until ctx ends, then tells every session and shuts down
// within shutdownGrace. Each value on hup re-reads the operators' keys.
func serveUntil(ctx context.Context, srv *serve.Server, listen string, hup <-chan os.Signal, log *slog.Logger) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("serving the dashboard over SSH", "addr", l.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	for {
		select {
		case <-hup:
			if err := srv.ReloadKeys(); err != nil {
				log.Error("keys not reloaded; the previous keys stay in use", "err", err)
				continue
			}
			log.Info("keys reloaded")
		case err := <-served:
			return err
		case <-ctx.Done():
			log.Info("shutting down", "sessions", srv.Sessions())
			shut, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			err := srv.Shutdown(shut)
			<-served
			if err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		}
	}
}
