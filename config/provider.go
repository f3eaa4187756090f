package config

// Provider is what the configuration needs to know of a provider to check an account of
// it. Package config names no provider: each provider's dialect (package poller)
// implements Provider, and package main passes the table of dialects to Load and Parse.
type Provider interface {
	// Name is the provider's name, as an account's `provider =` spells it.
	Name() string
	// DefaultBaseURL is the base URL the provider documents; "" when it documents none,
	// which makes base_url required.
	DefaultBaseURL() string
	// Keys are the account keys the provider takes beside the common ones (name,
	// provider, base_url, timeout, poll_interval, reserve, paths).
	Keys() []Key
	// CheckAccount reports what is wrong with the provider keys an account sets: a
	// missing credential, two that exclude each other, a setting that does not fit the
	// others. settings holds the account's valid settings by key, credentials the names
	// of the credentials it writes. Each message is one line; nil means none.
	CheckAccount(settings map[string]string, credentials []string) []string
}

// Key is one account key a provider takes. Its value may hold ${VAR} references, taken
// from the environment.
type Key struct {
	Name string
	// Secret keys are credentials: kept in Account.Credentials, which never prints a
	// value. The others are settings, kept in Account.Settings.
	Secret bool
	// Identity marks a credential that names the account rather than proves it (an
	// email, a user name, a client id): it is not scrubbed from provider text, and
	// writing it in the file itself draws no warning.
	Identity bool
	// Values lists the values a setting may take; nil allows any.
	Values []string
}

// provider finds the provider called name.
func provider(providers []Provider, name string) (Provider, bool) {
	for _, p := range providers {
		if p.Name() == name {
			return p, true
		}
	}
	return nil, false
}

// providerNames lists the providers' names, in the table's order.
func providerNames(providers []Provider) []string {
	names := make([]string, len(providers))
	for i, p := range providers {
		names[i] = p.Name()
	}
	return names
}
