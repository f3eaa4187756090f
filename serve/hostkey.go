package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"
)

// HostKeyName is the host key's file name in the state directory.
const HostKeyName = "ssh_host_ed25519_key"

// DefaultHostKeyPath is $XDG_STATE_HOME/emitop/ssh_host_ed25519_key, under ~/.local/state
// when XDG_STATE_HOME is unset: the key persists, so clients see the same host each time.
func DefaultHostKeyPath() (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("host key: no XDG_STATE_HOME and no home directory: %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "emitop", HostKeyName), nil
}

// privateMode makes the host key at path readable by its owner only, saying so when it
// had to narrow the mode.
func privateMode(path string, log *slog.Logger) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return errors.New("host key " + path + ": not a regular file")
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	log.Warn("host key was readable by others: mode set to 0600", "path", path, "was", fi.Mode().Perm().String())
	return nil
}

// HostKeyFingerprint is the SHA-256 fingerprint of the server's host key, as ssh prints it
// when it first meets the host: operators compare the two before they trust the server.
func (s *Server) HostKeyFingerprint() string {
	if len(s.ssh.HostSigners) == 0 {
		return ""
	}
	return gossh.FingerprintSHA256(s.ssh.HostSigners[0].PublicKey())
}
