// Command emitop is a terminal console for the operators who keep electronic invoices
// flowing: it polls provider accounts, shows their rate-limit budgets and problems, keeps
// history in SQLite and retries rejected documents safely.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"emitop/model"
)

// version is emitop's version, sent in the User-Agent.
var version = "0.1.0-dev"

// command is one subcommand: run gets the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commands is every subcommand, in the order `emitop help` lists them. It is a function,
// not a variable, because completion asks the table for every command's flags.
func commands() []command {
	return []command{
		{"clear", "delete a document the authority rejected at its provider, so its sender can send it again", runClear},
		{"completion", "print a shell completion script: bash, zsh or fish", runCompletion},
		{"dashboard", "the dashboard (what `emitop` alone runs); with no config, a demo", runDashboard},
		{"explain", "decode one raw HTTP response: class, verdict, what it means, what to do", runExplain},
		{"history", "list document events, newest first", runHistory},
		{"poll", "poll every account: headless until stopped, or --once and print", runPoll},
		{"report", "the shift report: what happened to each account lately, from the history", runReport},
		{"retry", "resend an account's rejected documents, safely", runRetry},
		{"sandbox", "serve the five providers, simulated, for demos and tests", runSandbox},
		{"serve", "serve the dashboard over SSH to the operators in the config", runServe},
	}
}

// lookup is the command called name.
func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
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
	cmd, ok := lookup(name)
	if !ok {
		if near, ok := nearest(name); ok {
			fmt.Fprintf(stderr, "emitop: unknown command %q: did you mean %s? (emitop help lists them)\n", model.Line(name, 40), near)
		} else {
			fmt.Fprintf(stderr, "emitop: unknown command %q (emitop help lists them)\n", model.Line(name, 40))
		}
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
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}

// nearest is the command whose name is closest to name, when one is close enough to be
// what was meant: name is a prefix of it, or at most two edits away from it.
func nearest(name string) (string, bool) {
	name = strings.ToLower(name)
	best, bestDist := "", 3
	for _, c := range commands() {
		d := editDistance(name, c.name)
		if name != "" && strings.HasPrefix(c.name, name) {
			d = 0
		}
		if d < bestDist {
			best, bestDist = c.name, d
		}
	}
	return best, best != ""
}

// editDistance is the Levenshtein distance between a and b, in bytes (command names are
// ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
