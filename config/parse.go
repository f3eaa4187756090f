package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/crypto/ssh"

	"emitop/model"
)

type rawConfig struct {
	Timezone string `toml:"timezone"`
	Store    struct {
		Path  string `toml:"path"`
		URL   string `toml:"url"`
		Lease any    `toml:"lease"`
	} `toml:"store"`
	Account  []rawAccount  `toml:"account"`
	Operator []rawOperator `toml:"operator"`
	Notify   []rawNotify   `toml:"notify"`
	Serve    struct {
		IdleTimeout any `toml:"idle_timeout"`
	} `toml:"serve"`
}

type rawAccount struct {
	Name         string            `toml:"name"`
	Provider     string            `toml:"provider"`
	BaseURL      string            `toml:"base_url"`
	Timeout      any               `toml:"timeout"`
	PollInterval any               `toml:"poll_interval"`
	Reserve      *float64          `toml:"reserve"`
	Paths        map[string]string `toml:"paths"`
}

// commonKeys are the account keys every provider takes; the others are the provider's.
var commonKeys = map[string]bool{
	"name": true, "provider": true, "base_url": true, "timeout": true, "poll_interval": true, "reserve": true, "paths": true,
}

type rawOperator struct {
	Name     string   `toml:"name"`
	Role     string   `toml:"role"`
	Keys     []string `toml:"keys"`
	KeysFile string   `toml:"keys_file"`
}

// Parse reads a configuration from data; env looks up the ${VAR} references of
// provider keys (os.LookupEnv in production); providers are the providers an account may
// name, each of which checks the keys of its accounts. Every problem found is reported,
// one Issue each, in an *Error.
func Parse(data []byte, env func(string) (string, bool), providers []Provider) (*Config, error) {
	var raw rawConfig
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{Issues: []Issue{syntaxIssue(newSource(data), pe)}}
		}
		return nil, &Error{Issues: []Issue{{Message: strings.TrimPrefix(err.Error(), "toml: ")}}}
	}
	// The provider keys of each account, which only its provider knows, as written.
	var keyed struct {
		Account []map[string]any `toml:"account"`
	}
	if _, err := toml.Decode(string(data), &keyed); err != nil {
		return nil, &Error{Issues: []Issue{{Message: strings.TrimPrefix(err.Error(), "toml: ")}}}
	}
	p := &parser{src: newSource(data), env: env, providers: providers}
	p.undecoded(md)
	c := &Config{
		Store:    Store{Path: p.storePath(raw.Store.Path), URL: p.storeURL(raw.Store.URL)},
		Location: p.location(raw.Timezone),
		Serve:    Serve{IdleTimeout: p.duration(raw.Serve.IdleTimeout, DefaultIdleTimeout, "serve.idle_timeout", p.src.tableKeyLine("serve", "idle_timeout"))},
	}
	c.Store.Lease = p.duration(raw.Store.Lease, DefaultLease, "store.lease", p.src.tableKeyLine("store", "lease"))
	if c.Store.Lease < MinLease {
		p.add(p.src.tableKeyLine("store", "lease"), "store.lease: at least %v", MinLease)
	}
	if raw.Store.Path != "" && raw.Store.URL != "" {
		p.add(p.src.tableKeyLine("store", "url"), "store: give path (a SQLite file on this host) or url (a PostgreSQL server), not both")
	}
	if c.Store.Path == "" {
		c.Store.Path = defaultStorePath(env)
	}
	accounts := map[string]int{}
	for i := range raw.Account {
		var keys map[string]any
		if i < len(keyed.Account) {
			keys = keyed.Account[i]
		}
		a := p.account(i, &raw.Account[i], keys)
		p.unique(accounts, "account", a.Name, a.Line)
		c.Accounts = append(c.Accounts, a)
	}
	operators := map[string]int{}
	for i := range raw.Operator {
		o := p.operator(i, &raw.Operator[i])
		p.unique(operators, "operator", o.Name, o.Line)
		c.Operators = append(c.Operators, o)
	}
	notifiers := map[string]int{}
	for i := range raw.Notify {
		n := p.notify(i, &raw.Notify[i])
		p.unique(notifiers, "notify", n.Name, n.Line)
		c.Notify = append(c.Notify, n)
	}
	if len(p.issues) > 0 {
		sort.SliceStable(p.issues, func(i, j int) bool { return p.issues[i].Line < p.issues[j].Line })
		return nil, &Error{Issues: p.issues}
	}
	c.literal = p.literal
	return c, nil
}

// storePath expands store.path: ${VAR} from the environment, and a leading ~ to the home
// folder. A variable that is not set, or ~user, is an issue: the path is never used as
// written, which would create a folder named "~" or "${HOME}".
func (p *parser) storePath(path string) string {
	line := p.src.tableKeyLine("store", "path")
	out, unset := expand(path, p.env)
	if len(unset) > 0 {
		p.add(line, "store.path: $%s is not set", strings.Join(unset, ", $"))
		return ""
	}
	if rest, ok := strings.CutPrefix(out, "~"); ok {
		if rest != "" && rest[0] != '/' {
			p.add(line, "store.path: %q: only ~/ is understood (the home folder); write the full path", model.Line(path, 80))
			return ""
		}
		home, _ := p.env("HOME")
		if home == "" {
			p.add(line, "store.path: ~ needs $HOME, which is not set; write the full path")
			return ""
		}
		out = home + rest
	}
	return out
}

// storeURL expands store.url (${VAR} from the environment) and checks that it names a
// PostgreSQL server. Its problems never repeat it: it may hold a password. A password
// written in the file rather than as ${VAR} is a secret the file holds.
func (p *parser) storeURL(raw string) string {
	if raw == "" {
		return ""
	}
	line := p.src.tableKeyLine("store", "url")
	out, unset := expand(raw, p.env)
	if len(unset) > 0 {
		p.add(line, "store.url: $%s is not set", strings.Join(unset, ", $"))
		return ""
	}
	u, err := url.Parse(out)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		p.add(line, "store.url: not a PostgreSQL URL; want postgres://user@host:5432/database (the password from $PGPASSWORD, ~/.pgpass or ${VAR})")
		return ""
	}
	authority, _, _ := strings.Cut(strings.TrimPrefix(raw, u.Scheme+"://"), "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		if _, pw, ok := strings.Cut(authority[:at], ":"); ok && pw != "" && !varRef.MatchString(pw) {
			p.literal = append(p.literal, "store.url password")
		}
	}
	return out
}

// location is the zone named by the timezone setting, the local zone when there is none.
func (p *parser) location(name string) *time.Location {
	if name == "" || strings.EqualFold(name, "local") {
		return time.Local
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		p.add(p.src.topKeyLine("timezone"), "timezone %q: not a zone name (e.g. America/El_Salvador, Europe/Madrid, UTC); leave it out for the local zone", model.Line(name, 60))
		return time.Local
	}
	return loc
}

type parser struct {
	src       source
	env       func(string) (string, bool)
	providers []Provider
	issues    []Issue
	literal   []string // secrets written in the file, by account and name
}

func (p *parser) add(line int, format string, a ...any) {
	p.issues = append(p.issues, Issue{Line: line, Message: fmt.Sprintf(format, a...)})
}

// unique records a named entry's line in seen, or reports the name as already used by the
// entry of the same kind seen first.
func (p *parser) unique(seen map[string]int, kind, name string, line int) {
	if name == "" {
		return
	}
	if first, dup := seen[name]; dup {
		p.add(line, "%s %q: name already used by the %s on line %d", kind, name, kind, first)
		return
	}
	seen[name] = line
}

// undecoded reports every key emitop does not know, at its line.
func (p *parser) undecoded(md toml.MetaData) {
	unknown := map[string]bool{}
	for _, k := range md.Undecoded() {
		unknown[k.String()] = true
	}
	if len(unknown) == 0 {
		return
	}
	index := map[string]int{} // array table name → index of the current element
	for _, k := range md.Keys() {
		if len(k) == 1 && (k[0] == "account" || k[0] == "operator" || k[0] == "notify") && md.Type(k...) == "ArrayHash" {
			index[k[0]]++
		}
		if !unknown[k.String()] || len(k) > 1 && unknown[k[:len(k)-1].String()] {
			continue // known, or inside an unknown table already reported
		}
		if len(k) == 2 && k[0] == "account" {
			continue // a provider key: its provider says whether it applies
		}
		line := 0
		if n := index[k[0]]; n > 0 && len(k) > 1 {
			line = p.src.elementKeyLine(k[0], n-1, k[1])
		} else if len(k) > 1 {
			line = p.src.tableKeyLine(k[0], k[1])
		} else if line = p.src.topKeyLine(k[0]); line == 0 {
			line = p.src.tableLine(k[0])
		}
		p.add(line, "unknown key %q", k.String())
	}
}

func (p *parser) account(i int, r *rawAccount, keys map[string]any) Account {
	line := p.src.header("account", i)
	a := Account{
		Name: r.Name, Provider: r.Provider, BaseURL: strings.TrimRight(r.BaseURL, "/"),
		Reserve: DefaultReserve, Paths: r.Paths, Line: line,
	}
	label := fmt.Sprintf("account %q", r.Name)
	if r.Name == "" {
		label = fmt.Sprintf("account #%d", i+1)
		p.add(line, "%s: missing name", label)
	}
	p.printable(line, label, r.Name)
	keyLine := func(key string) int { return p.src.elementKeyLine("account", i, key) }
	prov, known := provider(p.providers, r.Provider)
	names := strings.Join(providerNames(p.providers), ", ")
	switch {
	case r.Provider == "":
		p.add(line, "%s: missing provider (one of %s)", label, names)
	case !known:
		p.add(keyLine("provider"), "%s: unknown provider %q (one of %s)", label, r.Provider, names)
	}
	if a.BaseURL == "" && known {
		a.BaseURL = strings.TrimRight(prov.DefaultBaseURL(), "/")
		if a.BaseURL == "" {
			p.add(line, "%s: missing base_url (%s publishes no default)", label, r.Provider)
		}
	}
	if a.BaseURL != "" {
		if msg := checkBaseURL(a.BaseURL); msg != "" {
			p.add(keyLine("base_url"), "%s: base_url %s", label, msg)
		}
	}
	a.Timeout = p.duration(r.Timeout, DefaultTimeout, label+": timeout", keyLine("timeout"))
	a.PollInterval = p.duration(r.PollInterval, DefaultPollInterval, label+": poll_interval", keyLine("poll_interval"))
	if r.Reserve != nil {
		a.Reserve = *r.Reserve
		if a.Reserve < 0 || a.Reserve >= 1 {
			p.add(keyLine("reserve"), "%s: reserve %g is outside [0, 1)", label, a.Reserve)
		}
	}
	for name, path := range r.Paths {
		if !strings.HasPrefix(path, "/") {
			p.add(p.src.elementKeyLine("account", i, name), "%s: paths.%s %q must start with /", label, name, path)
		}
	}
	a.Settings, a.Credentials = p.providerKeys(label, line, prov, keys, keyLine)
	return a
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// providerKeys reads the keys of an account that belong to its provider: each must be one
// the provider takes, a text, with its ${VAR} references set in the environment; then the
// provider checks them together. Settings and credentials come back apart. With prov nil
// (an unknown provider, already reported) a key is reported only when no provider takes
// it. The provider's check is told of every credential written, even one refused here,
// so that a bad value is not reported missing too. Messages name keys and variables,
// never values.
func (p *parser) providerKeys(label string, line int, prov Provider, keys map[string]any, keyLine func(string) int) (map[string]string, Credentials) {
	settings, secrets, identities := map[string]string{}, map[string]string{}, map[string]bool{}
	var given []string // the credentials written, valid or not: none is then also missing
	var taken []Key
	if prov != nil {
		taken = prov.Keys()
	}
	names := make([]string, 0, len(keys))
	for name := range keys {
		if !commonKeys[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		key, ok := findKey(taken, name)
		switch {
		case !ok && !p.anyTakes(name):
			p.add(keyLine(name), "unknown key %q", "account."+name)
			continue
		case !ok && prov != nil:
			p.add(keyLine(name), "%s: %s does not apply to provider %s (it takes %s)", label, name, prov.Name(), keyNames(taken))
			continue
		case !ok:
			continue
		}
		if key.Secret {
			given = append(given, name)
		}
		raw, isText := keys[name].(string)
		if !isText {
			p.add(keyLine(name), "%s: %s must be a text in quotes", label, name)
			continue
		}
		val, unset := expand(raw, p.env)
		for _, v := range unset {
			p.add(keyLine(name), "%s: %s: environment variable %s is not set", label, name, v)
		}
		switch {
		case len(unset) > 0:
			continue
		case val == "":
			p.add(keyLine(name), "%s: %s is empty", label, name)
			continue
		case key.Values != nil && !contains(key.Values, val):
			p.add(keyLine(name), "%s: %s %q is not one of %s", label, name, model.Line(val, 40), strings.Join(key.Values, ", "))
			continue
		}
		if !key.Secret {
			settings[name] = val
			continue
		}
		secrets[name] = val
		if key.Identity {
			identities[name] = true
		} else if !varRef.MatchString(raw) {
			p.literal = append(p.literal, label+" "+name)
		}
	}
	creds := NewCredentials(secrets)
	creds.identities = identities
	if prov != nil {
		for _, msg := range prov.CheckAccount(settings, given) {
			p.add(line, "%s: %s", label, msg)
		}
	}
	return settings, creds
}

// anyTakes reports whether some provider takes the key name.
func (p *parser) anyTakes(name string) bool {
	for _, prov := range p.providers {
		if _, ok := findKey(prov.Keys(), name); ok {
			return true
		}
	}
	return false
}

// findKey finds the key called name.
func findKey(keys []Key, name string) (Key, bool) {
	for _, k := range keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

// keyNames lists the keys' names, comma-separated.
func keyNames(keys []Key) string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

func (p *parser) operator(i int, r *rawOperator) Operator {
	line := p.src.header("operator", i)
	o := Operator{Name: r.Name, Role: r.Role, Keys: r.Keys, KeysFile: r.KeysFile, Line: line}
	label := fmt.Sprintf("operator %q", r.Name)
	if r.Name == "" {
		label = fmt.Sprintf("operator #%d", i+1)
		p.add(line, "%s: missing name", label)
	}
	p.printable(line, label, r.Name)
	keyLine := func(key string) int { return p.src.elementKeyLine("operator", i, key) }
	switch r.Role {
	case RoleOperator, RoleViewer:
	case "":
		p.add(line, "%s: missing role (operator or viewer)", label)
	default:
		p.add(keyLine("role"), "%s: unknown role %q (operator or viewer)", label, r.Role)
	}
	if len(r.Keys) == 0 && r.KeysFile == "" {
		p.add(line, "%s: no keys and no keys_file: nobody could log in as %s", label, r.Name)
	}
	for n, k := range r.Keys {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			p.add(keyLine("keys"), "%s: keys[%d] is not an SSH public key: %v", label, n, err)
		}
	}
	return o
}

// printable refuses a name with control characters or escape sequences: names are shown
// on every screen and in every log line.
func (p *parser) printable(line int, label, name string) {
	if model.Line(name, 0) != name {
		p.add(line, "%s: name must be plain text, without control characters", label)
	}
}

// duration reads a duration written as a string ("30s", "2m"); v nil gives def.
func (p *parser) duration(v any, def time.Duration, what string, line int) time.Duration {
	if v == nil {
		return def
	}
	s, ok := v.(string)
	if !ok {
		p.add(line, "%s: want a duration in quotes such as \"30s\", got %v", what, v)
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.add(line, "%s: bad duration %q (write e.g. \"30s\" or \"2m\")", what, s)
		return def
	}
	if d <= 0 {
		p.add(line, "%s: duration %q must be positive", what, s)
		return def
	}
	return d
}

// checkBaseURL returns what is wrong with a base URL, "" when nothing. It never quotes a
// URL's user info or query: either could hold a password or a key.
func checkBaseURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "is not a URL"
	}
	if u.User != nil {
		return "must not carry user info: put credentials in their own keys"
	}
	shown := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Sprintf("%q is not an http(s) URL", shown)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Sprintf("%q must not have a query or fragment (not shown: it may hold a credential)", shown)
	}
	return ""
}

// quotedText is what the TOML decoder quotes of the file in a syntax error.
var quotedText = regexp.MustCompile(`"[^"]*"|'[^']*'`)

// syntaxIssue is a TOML syntax error as an Issue. The decoder's message quotes the text it
// stopped at, which may be a credential written without quotes: the quote is left out,
// and the key of the line named instead.
func syntaxIssue(src source, pe toml.ParseError) Issue {
	msg := quotedText.ReplaceAllString(pe.Message, "text")
	if key := src.keyOn(pe.Position.Line); key != "" {
		msg += fmt.Sprintf(" (in the value of %s: write it in quotes, or as \"${VAR}\" from the environment)", key)
	}
	return Issue{Line: pe.Position.Line, Message: msg}
}

// expand replaces every ${VAR} in s from env and lists the variables that are unset.
func expand(s string, env func(string) (string, bool)) (string, []string) {
	var unset []string
	out := varRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := env(name)
		if !ok {
			unset = append(unset, name)
		}
		return v
	})
	return out, unset
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
