// Package config reads emitop's TOML configuration: the store, the provider accounts with
// their credentials, and the operators of `emitop serve`.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults for what an account or the server leaves unsaid.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultPollInterval = 30 * time.Second
	DefaultReserve      = 0.1
	DefaultIdleTimeout  = 30 * time.Minute
	DefaultLease        = 10 * time.Second
)

// MinLease is the shortest poll lease a configuration may ask for: a process renews its
// leases three times a lease, and a renewal is a write to the store.
const MinLease = time.Second

// Config is a loaded, validated configuration.
type Config struct {
	Path      string         // the file it came from; "" when parsed from bytes
	Location  *time.Location // the zone every time is shown in: the timezone setting, else the local zone
	Store     Store
	Accounts  []Account
	Operators []Operator
	Serve     Serve
	Notify    []Notify // [[notify]]: where on-call messages go (notify.go)
	Warnings  []string // what is unsafe but allowed (a file readable by others holding secrets)

	literal []string // the secrets written in the file itself, not as ${VAR}: "account \"a\" token"
}

// Store says where the history lives: a SQLite file on this host (Path), or the team's
// PostgreSQL (URL), which every process and host that names it shares.
type Store struct {
	Path string // ${VAR} and a leading ~/ expanded; relative to the config file's folder
	URL  string // postgres://user@host/database, ${VAR} expanded; when set, Path is unused
	// Lease is how long a process's poll leases outlive its last renewal: the accounts
	// of a process that died are taken over by the others within two of them.
	Lease time.Duration
}

// Account is one provider account emitop polls.
type Account struct {
	Name         string // unique; what operators see and type
	Provider     string // the name of one of the providers Load was given
	BaseURL      string // http(s), no trailing slash, no user info
	Timeout      time.Duration
	PollInterval time.Duration
	Reserve      float64           // share of every window emitop never spends, in [0, 1)
	Paths        map[string]string // overrides of the assumed endpoint paths, by name
	Settings     map[string]string // the provider's settings (api_version, tenant...), by key
	Credentials  Credentials
	Line         int // the line of its [[account]] header; 0 when not from a file
}

// Setting is the provider setting called key; "" when the account does not set it.
func (a Account) Setting(key string) string { return a.Settings[key] }

// Path is the endpoint path called name: the account's override, else def.
func (a Account) Path(name, def string) string {
	if p, ok := a.Paths[name]; ok {
		return p
	}
	return def
}

// Operator is a person allowed into `emitop serve`.
type Operator struct {
	Name     string
	Role     string   // operator or viewer
	Keys     []string // authorized_keys lines
	KeysFile string   // a file of authorized_keys lines; relative to the config file
	Line     int
}

// Operator roles.
const (
	RoleOperator = "operator"
	RoleViewer   = "viewer"
)

// Serve configures `emitop serve`.
type Serve struct {
	IdleTimeout time.Duration
}

// Issue is one problem found in a configuration.
type Issue struct {
	Line    int // 0 when no line can be named
	Message string
}

// Error is every problem of a configuration, one per line of Error().
type Error struct {
	File   string
	Issues []Issue
}

// Error lists the issues, one per line, each prefixed with the file and line it came from.
func (e *Error) Error() string {
	lines := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		var b strings.Builder
		if e.File != "" {
			b.WriteString(e.File)
			b.WriteString(":")
		}
		if is.Line > 0 {
			fmt.Fprintf(&b, "%d:", is.Line)
		}
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString(is.Message)
		lines[i] = b.String()
	}
	return strings.Join(lines, "\n")
}

// Locate finds the configuration file: flagPath when given, else $EMITOP_CONFIG, else
// $XDG_CONFIG_HOME/emitop/config.toml (~/.config when XDG_CONFIG_HOME is unset). found
// reports whether the file exists; a path given by flag or variable is returned even when
// it does not, so that Load can say so.
func Locate(flagPath string) (path string, found bool) {
	switch {
	case flagPath != "":
		path = flagPath
	case os.Getenv("EMITOP_CONFIG") != "":
		path = os.Getenv("EMITOP_CONFIG")
	default:
		dir := os.Getenv("XDG_CONFIG_HOME")
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", false
			}
			dir = filepath.Join(home, ".config")
		}
		path = filepath.Join(dir, "emitop", "config.toml")
	}
	_, err := os.Stat(path)
	return path, err == nil
}

// Load reads and validates the file at path, taking ${VAR} values from the environment;
// providers are the providers its accounts may name (see Parse). Relative paths in it
// (store.path, keys_file) are taken relative to the file's folder.
func Load(path string, providers []Provider) (*Config, error) {
	data, mode, err := ReadPrivate(path, "anyone who can write it chooses the accounts, the operators and their keys")
	if errors.Is(err, ErrNotPrivate) {
		return nil, &Error{Issues: []Issue{{Message: err.Error()}}}
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data, os.LookupEnv, providers)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = path
		}
		return nil, err
	}
	c.Path = path
	if mode&0o044 != 0 && len(c.literal) > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s is readable by others (mode %04o) and holds secrets written in it (%s): run chmod 600 %s, or take them from the environment as ${VAR}",
			path, mode, strings.Join(c.literal, ", "), path))
	}
	dir := filepath.Dir(path)
	if !filepath.IsAbs(c.Store.Path) {
		c.Store.Path = filepath.Join(dir, c.Store.Path)
	}
	for i := range c.Operators {
		if f := c.Operators[i].KeysFile; f != "" && !filepath.IsAbs(f) {
			c.Operators[i].KeysFile = filepath.Join(dir, f)
		}
	}
	return c, nil
}

// defaultStorePath is $XDG_STATE_HOME/emitop/emitop.db, ~/.local/state when unset.
func defaultStorePath(env func(string) (string, bool)) string {
	if dir, ok := env("XDG_STATE_HOME"); ok && dir != "" {
		return filepath.Join(dir, "emitop", "emitop.db")
	}
	home, _ := env("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".local", "state", "emitop", "emitop.db")
}
