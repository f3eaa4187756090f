package ui

import (
	"fmt"
	"strings"

	"emitop/model"
)

// filter narrows the documents and the history: a status, an account and a provider set by
// `:` commands, and free text set by `/`.
type filter struct {
	status   model.Status
	account  string
	provider string
	text     string // lower-cased
}

// empty reports whether the filter lets everything through.
func (f filter) empty() bool { return f == filter{} }

// String describes the filter for the footer.
func (f filter) String() string {
	var parts []string
	if f.status != "" {
		parts = append(parts, string(f.status))
	}
	if f.account != "" {
		parts = append(parts, "account "+f.account)
	}
	if f.provider != "" {
		parts = append(parts, "provider "+f.provider)
	}
	if f.text != "" {
		parts = append(parts, fmt.Sprintf("%q", f.text))
	}
	return strings.Join(parts, " · ")
}

// narrows reports whether f can only drop documents old lets through: the same fields, and
// a text that contains old's.
func (f filter) narrows(old filter) bool {
	return f.status == old.status && f.account == old.account && f.provider == old.provider &&
		f.text != old.text && strings.Contains(f.text, old.text)
}

// fields reports whether the structured part of the filter matches.
func (f filter) fields(account, provider string, status model.Status) bool {
	return (f.status == "" || f.status == status) &&
		(f.account == "" || f.account == account) &&
		(f.provider == "" || f.provider == provider)
}

// command is one `:` command the dashboard understands.
type command struct {
	name  string
	arg   string // the argument's name in help; "" when it takes none
	about string
}

// commands is the table `:` parses against and the help screen lists.
var commands = []command{
	{"rejected", "", "only rejected documents"},
	{"pending", "", "only pending documents"},
	{"account", "NAME", "only account NAME"},
	{"provider", "NAME", "only the accounts of provider NAME"},
	{"history", "", "the event history"},
	{"dashboard", "", "back to the accounts and documents"},
	{"all", "", "clear every filter"},
	{"help", "", "keys and commands"},
	{"quit", "", "leave emitop"},
}

// invocation is a parsed `:` command.
type invocation struct {
	name, arg string
}

// parseCommand parses the text typed after `:`. A command may be shortened to any unique
// prefix (`:rej`, `:acc sv-main`).
func parseCommand(s string) (invocation, error) {
	words := strings.Fields(s)
	if len(words) == 0 {
		return invocation{}, fmt.Errorf("empty command")
	}
	name := strings.ToLower(words[0])
	var found []command
	for _, c := range commands {
		if c.name == name {
			found = []command{c}
			break
		}
		if strings.HasPrefix(c.name, name) {
			found = append(found, c)
		}
	}
	switch {
	case name == "q":
		found = []command{{name: "quit"}}
	case len(found) == 0:
		return invocation{}, fmt.Errorf("unknown command %q (try :help)", model.Line(words[0], 20))
	case len(found) > 1:
		return invocation{}, fmt.Errorf("ambiguous command %q", model.Line(words[0], 20))
	}
	c := found[0]
	args := words[1:]
	switch {
	case c.arg != "" && len(args) != 1:
		return invocation{}, fmt.Errorf("usage: :%s %s", c.name, c.arg)
	case c.arg == "" && len(args) > 0:
		return invocation{}, fmt.Errorf(":%s takes no argument", c.name)
	}
	inv := invocation{name: c.name}
	if len(args) == 1 {
		inv.arg = args[0]
	}
	return inv, nil
}
