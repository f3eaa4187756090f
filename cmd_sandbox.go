package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"emitop/sandbox"
)

func runSandbox(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("sandbox", stderr)
	listen := fs.String("listen", "127.0.0.1:8700", "address to listen on")
	scenario := fs.String("scenario", "demo", "calm, demo or storm")
	seed := fs.Uint64("seed", 1, "seed of every random choice: same seed, same documents and faults")
	configOut := fs.String("config-out", "", "write a ready emitop config for the sandbox's accounts to this file")
	accounts := fs.Int("accounts", 0, fmt.Sprintf("serve this many accounts per provider, each with its own credentials and budget (up to %d); 0: the scenario's", sandbox.MaxAccounts))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sb, err := sandbox.New(sandbox.Options{Scenario: *scenario, Seed: *seed, Accounts: *accounts})
	if err != nil {
		return usagef("%v", err)
	}
	base, err := sb.Start(*listen)
	if err != nil {
		return err
	}
	defer sb.Close()
	served := sb.Accounts()
	fmt.Fprintf(stdout, "sandbox: scenario %s, seed %d, serving %d accounts on %s\n", *scenario, *seed, len(served), base)
	for i, a := range served {
		if i == listed {
			fmt.Fprintf(stdout, "  … and %d more (--config-out writes them all)\n", len(served)-listed)
			break
		}
		fmt.Fprintf(stdout, "  %-13s %-10s %s  %s\n", a.Name, a.Provider, a.BaseURL, credentialLine(a.Credentials))
	}
	if *configOut != "" {
		if err := os.WriteFile(*configOut, []byte(sb.ConfigTOML()), 0o600); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		fmt.Fprintf(stdout, "config written to %s\n", *configOut)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sb.Shutdown(shut)
	return nil
}

// listed is how many accounts the sandbox lists when it starts: a fleet's are in the
// configuration --config-out writes.
const listed = 30

// credentialLine shows an account's sandbox credentials, sorted by key. They are the
// sandbox's own throwaway values, printed so that a person can try the endpoints by hand.
func credentialLine(creds map[string]string) string {
	keys := make([]string, 0, len(creds))
	for k := range creds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+creds[k])
	}
	return strings.Join(parts, " ")
}
