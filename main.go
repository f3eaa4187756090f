// Command emitop is a terminal console for the operators who keep electronic invoices
// flowing: it polls provider accounts, shows their rate-limit budgets and problems, keeps
// history in SQLite and retries rejected documents safely.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"emitop/model"
)

// version is emitop's version, sent in the User-Agent.
var version = "0.1.0-dev"

// command is one subcommand: run gets the arguments after its name.
type command struct {
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

// register adds a subcommand; each cmd_*.go file calls it from init.
func register(name, summary string, run func(args []string, stdin io.Reader, stdout, stderr io.Writer) error) {
	commands[name] = command{summary: summary, run: run}
}

// usageError is a mistake in how emitop was called: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// exitError carries an exit status chosen by a command (e.g. retry's 1) with no message.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name := ""
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	if name == "-h" || name == "--help" || name == "help" {
		usage(stdout)
		return 0
	}
	if name == "version" || name == "--version" {
		fmt.Fprintln(stdout, "emitop", version)
		return 0
	}
	if name == "" || strings.HasPrefix(name, "-") {
		// No command: the dashboard, with whatever flags came.
		if name != "" {
			args = append([]string{name}, args...)
		}
		name = "dashboard"
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "emitop: unknown command %q (try emitop help)\n", name)
		return 2
	}
	err := cmd.run(args, stdin, stdout, stderr)
	var ue usageError
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "emitop %s: %s\n", name, model.Sanitize(ue.msg, true))
		return 2
	}
	// Every error a command returns ends here, and many carry text that came from a
	// provider or a configuration: sanitized once, here, rather than at each wrap. The
	// newlines stay: a configuration's problems are one per line.
	fmt.Fprintf(stderr, "emitop %s: %s\n", name, model.Sanitize(err.Error(), true))
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: emitop [command] [flags]   (no command: the dashboard)\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}
