package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"emitop/poller"
	"emitop/serve"
)

// shutdownGrace is how long SIGTERM waits for sessions to quit before closing them.
const shutdownGrace = 10 * time.Second

func runServe(args []string, _ io.Reader, _, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	listen := fs.String("listen", "127.0.0.1:2222", "address to listen on; without a host, loopback only (0.0.0.0:2222 for every interface)")
	metricsListen := metricsFlag(fs)
	hostKey := fs.String("host-key", "", "the server's ed25519 host key, created when missing (default $XDG_STATE_HOME/emitop/"+serve.HostKeyName+")")
	cfgPath, db := storeFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, stderr)
	if errors.Is(err, errNoConfig) {
		return usagef("%v: serve needs one with [[operator]] entries (--config)", err)
	}
	if err != nil {
		return err
	}
	if len(cfg.Operators) == 0 {
		return usagef("the config declares no [[operator]]: nobody could log in")
	}
	if *hostKey == "" {
		if *hostKey, err = serve.DefaultHostKeyPath(); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := openStore(ctx, cfg, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	oc, err := newOnCall(cfg, *metricsListen, st, log)
	if err != nil {
		return err
	}
	defer oc.stop() // before the history closes: the notifiers record what they sent
	// One poller and one store for every session.
	x, err := startPolling(cfg, st, oc.observe(poller.Options{Version: version, OnError: pollFailed(log), OnHistory: historyLogged(log)}),
		false, fleetLogged(log))
	if err != nil {
		return err
	}
	pollCtx, stopPolling := context.WithCancel(context.Background())
	polled := x.run(pollCtx)
	defer func() {
		stopPolling()
		polled()
	}()
	p := x.p
	srv, err := serve.New(serve.Options{
		Backend: oc.backend(x, st), Store: st, StoreName: storeLabel(st.Location()), Operators: cfg.Operators,
		HostKeyPath: *hostKey, IdleTimeout: cfg.Serve.IdleTimeout, Log: log, Location: zone(cfg),
	})
	if err != nil {
		return err
	}
	oc.start(p, srv.Sessions)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return serveUntil(ctx, srv, *listen, hup, log)
}

// serveUntil serves on listen until ctx ends, then tells every session and shuts down
// within shutdownGrace. Each value on hup re-reads the operators' keys.
func serveUntil(ctx context.Context, srv *serve.Server, listen string, hup <-chan os.Signal, log *slog.Logger) error {
	l, err := net.Listen("tcp", listenAddress(listen))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("serving the dashboard over SSH", "addr", l.Addr().String(), "host_key", srv.HostKeyFingerprint())
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

// listenAddress is where --listen serves: an address without a host (":2222") means
// loopback, so that serving every interface is a choice someone wrote (0.0.0.0:2222).
func listenAddress(flag string) string {
	if host, port, err := net.SplitHostPort(flag); err == nil && host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return flag
}
