// Package sandboxtest starts the built-in sandbox for a test and loads its accounts
// through emitop's own configuration, as emitop would read them.
package sandboxtest

import (
	"testing"

	"emitop/config"
	"emitop/sandbox"
)

// Start serves a sandbox on loopback until the test ends and returns it with its
// accounts, checked by providers (the dialects' table, poller.Providers).
func Start(t testing.TB, opts sandbox.Options, providers []config.Provider) (*sandbox.Sandbox, []config.Account) {
	t.Helper()
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	cfg, err := config.Parse([]byte(sb.ConfigTOML()), func(string) (string, bool) { return "", false }, providers)
	if err != nil {
		t.Fatal(err)
	}
	return sb, cfg.Accounts
}
