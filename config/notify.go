package config

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Notify is one [[notify]] entry: a receiver of on-call messages.
type Notify struct {
	Name string
	Kind string // NotifyWebhook or NotifySlack
	// Secrets holds "url" (a Slack incoming-webhook URL is itself a credential) and, for a
	// webhook, an optional "token" sent as a bearer token. Never printed.
	Secrets      Credentials
	Events       []string      // which of NotifyEvents it receives
	Repeat       time.Duration // a condition that lasts is announced again at most this often
	MaxPerMinute int           // messages sent per minute at most; more wait their turn
	Timeout      time.Duration // for one attempt to deliver a message
	Triage       string        // the ssh command that reaches emitop serve; "-t account NAME" is added
	Line         int
}

// Kinds of [[notify]] entry.
const (
	NotifyWebhook = "webhook" // POST of a JSON object
	NotifySlack   = "slack"   // a Slack incoming-webhook message
)

// NotifyEvents are what a [[notify]] entry may receive: changes of an account's health,
// credentials refused, a window about to run out, and new documents whose verdict is
// escalate.
var NotifyEvents = []string{"health", "refused", "window", "escalate"}

// Defaults of a [[notify]] entry.
const (
	DefaultNotifyRepeat       = time.Hour
	DefaultNotifyMaxPerMinute = 6
	DefaultNotifyTimeout      = 10 * time.Second
)

type rawNotify struct {
	Name         string   `toml:"name"`
	Kind         string   `toml:"kind"`
	URL          *string  `toml:"url"`
	Token        *string  `toml:"token"`
	Events       []string `toml:"events"`
	Repeat       any      `toml:"repeat"`
	MaxPerMinute *int     `toml:"max_per_minute"`
	Timeout      any      `toml:"timeout"`
	Triage       string   `toml:"triage"`
}

func (p *parser) notify(i int, r *rawNotify) Notify {
	line := p.src.header("notify", i)
	keyLine := func(key string) int { return p.src.elementKeyLine("notify", i, key) }
	n := Notify{Name: r.Name, Kind: r.Kind, Events: r.Events, MaxPerMinute: DefaultNotifyMaxPerMinute, Triage: r.Triage, Line: line}
	label := fmt.Sprintf("notify %q", r.Name)
	if r.Name == "" {
		label = fmt.Sprintf("notify #%d", i+1)
		p.add(line, "%s: missing name", label)
	}
	p.printable(line, label, r.Name)
	switch r.Kind {
	case NotifyWebhook, NotifySlack:
	case "":
		p.add(line, "%s: missing kind (webhook or slack)", label)
	default:
		p.add(keyLine("kind"), "%s: unknown kind %q (webhook or slack)", label, r.Kind)
	}
	secrets := map[string]string{}
	for _, s := range []struct {
		name  string
		value *string
	}{{"url", r.URL}, {"token", r.Token}} {
		if s.value == nil {
			continue
		}
		if s.name == "token" && r.Kind == NotifySlack {
			p.add(keyLine("token"), "%s: token does not apply to kind slack (its url is the credential)", label)
			continue
		}
		v, unset := expand(*s.value, p.env)
		for _, name := range unset {
			p.add(keyLine(s.name), "%s: %s: environment variable %s is not set", label, s.name, name)
		}
		if len(unset) == 0 && v == "" {
			p.add(keyLine(s.name), "%s: %s is empty", label, s.name)
		}
		if len(unset) == 0 && v != "" {
			secrets[s.name] = v
			if !varRef.MatchString(*s.value) {
				p.literal = append(p.literal, label+" "+s.name)
			}
		}
	}
	switch u, ok := secrets["url"]; {
	case r.URL == nil:
		p.add(line, "%s: missing url", label)
	case ok && !httpURL(u):
		// Never quoted: the URL is a credential.
		p.add(keyLine("url"), "%s: url is not an http(s) URL with a host", label)
	}
	n.Secrets = NewCredentials(secrets)
	if len(n.Events) == 0 {
		n.Events = NotifyEvents
	}
	for _, e := range r.Events {
		if !contains(NotifyEvents, e) {
			p.add(keyLine("events"), "%s: unknown event %q (one of %s)", label, e, strings.Join(NotifyEvents, ", "))
		}
	}
	n.Repeat = p.duration(r.Repeat, DefaultNotifyRepeat, label+": repeat", keyLine("repeat"))
	n.Timeout = p.duration(r.Timeout, DefaultNotifyTimeout, label+": timeout", keyLine("timeout"))
	if r.MaxPerMinute != nil {
		n.MaxPerMinute = *r.MaxPerMinute
		if n.MaxPerMinute < 1 || n.MaxPerMinute > 600 {
			p.add(keyLine("max_per_minute"), "%s: max_per_minute %d is outside 1–600", label, n.MaxPerMinute)
		}
	}
	if n.Triage == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "HOST"
		}
		n.Triage = "ssh -p 2222 " + host
	}
	p.printable(keyLine("triage"), label+": triage", n.Triage)
	return n
}

// httpURL reports whether s is an absolute http(s) URL with a host.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
