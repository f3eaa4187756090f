package config

import (
	"log/slog"
	"sort"
)

const redacted = "[redacted]"

// Credentials are an account's secrets (token, API key, passwords), by the name of the
// provider key that set each one ("token", "api_key", "password"...). However a
// Credentials value is printed (%v, %+v, %#v, JSON, slog) it shows "[redacted]"; only Get
// reveals a value, for the code that authenticates.
type Credentials struct {
	values     map[string]string
	identities map[string]bool // the ones that name the account rather than prove it (Key.Identity)
}

// NewCredentials holds values by name (the secret keys a provider takes).
func NewCredentials(values map[string]string) Credentials {
	c := Credentials{values: make(map[string]string, len(values))}
	for k, v := range values {
		c.values[k] = v
	}
	return c
}

// Get returns the credential called name, or "" when the account has none.
func (c Credentials) Get(name string) string { return c.values[name] }

// Secrets lists the values of the credentials that are secrets (tokens, keys, passwords;
// not an email or a user name, which the provider's Key marks Identity), for scrubbing
// them from text a provider echoes back. Credentials made by NewCredentials count all as
// secrets.
func (c Credentials) Secrets() []string {
	var out []string
	for _, name := range c.Names() {
		if !c.identities[name] {
			out = append(out, c.values[name])
		}
	}
	return out
}

// Names lists the credentials present, sorted.
func (c Credentials) Names() []string {
	names := make([]string, 0, len(c.values))
	for k := range c.values {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// String hides the values.
func (c Credentials) String() string { return redacted }

// GoString hides the values from %#v.
func (c Credentials) GoString() string { return redacted }

// MarshalJSON hides the values.
func (c Credentials) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText hides the values from encoders that use text (TOML, XML).
func (c Credentials) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue hides the values from log/slog.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(redacted) }
