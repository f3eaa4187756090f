package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"emitop/model"
	"emitop/poller"
)

func init() {
	register("completion", "print a shell completion script: bash, zsh or fish", runCompletion)
}

// flagSets holds the flag set each command made last (newFlags notes it): the one place
// a command's flags are declared, which completion reads instead of a list of its own.
var flagSets sync.Map // command name → *flag.FlagSet

// pathFlags are the flags whose value is a file.
var pathFlags = map[string]bool{"config": true, "config-out": true, "db": true, "host-key": true}

// valueFlags are the flags whose values completion offers: account names from the
// configuration, at the moment of completing, and the providers.
var valueFlags = map[string]string{
	"account":  `$(emitop completion accounts "${cfg[@]}" 2>/dev/null)`,
	"provider": strings.Join(poller.DialectNames(), " "),
}

func runCompletion(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "accounts" {
		return printAccounts(args[1:], stdout)
	}
	if len(args) != 1 {
		return usagef("want one of bash, zsh, fish (source <(emitop completion bash))")
	}
	cmds, err := commandFlags()
	if err != nil {
		return err
	}
	switch args[0] {
	case "bash":
		_, err = io.WriteString(stdout, bashScript(cmds))
	case "zsh":
		_, err = io.WriteString(stdout, "#compdef emitop\n# emitop completion for zsh: source <(emitop completion zsh)\n"+
			"autoload -U +X bashcompinit && bashcompinit\n"+bashScript(cmds))
	case "fish":
		_, err = io.WriteString(stdout, fishScript(cmds))
	default:
		return usagef("unknown shell %q: want bash, zsh or fish", args[0])
	}
	return err
}

// printAccounts lists the account names of the configuration (--config FILE, else where
// every command looks), one a line, for the scripts to offer; nothing at all when there
// is no configuration or it has problems, rather than an error under the cursor.
func printAccounts(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("completion accounts", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "")
	if fs.Parse(args) != nil {
		return nil
	}
	cfg, err := loadConfig(*cfgPath, io.Discard)
	if err != nil {
		return nil
	}
	for _, a := range cfg.Accounts {
		fmt.Fprintln(stdout, a.Name)
	}
	return nil
}

// cmdFlags is one command and its flags.
type cmdFlags struct {
	name, summary string
	flags         []*flag.Flag
}

// commandFlags asks every command for its flags: each parses "-h" with its output thrown
// away, which defines its flag set and stops before it does anything.
func commandFlags() ([]cmdFlags, error) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []cmdFlags
	for _, n := range names {
		c := cmdFlags{name: n, summary: commands[n].summary}
		if n != "completion" {
			commands[n].run([]string{"-h"}, strings.NewReader(""), io.Discard, io.Discard)
			v, ok := flagSets.Load(n)
			if !ok {
				return nil, errors.New("completion: command " + n + " declares no flags with newFlags")
			}
			v.(*flag.FlagSet).VisitAll(func(f *flag.Flag) { c.flags = append(c.flags, f) })
		}
		out = append(out, c)
	}
	return out, nil
}

// isBool reports whether a flag takes no value.
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// dashed is a flag as typed: -o for one letter, --name otherwise.
func dashed(f *flag.Flag) string {
	if len(f.Name) == 1 {
		return "-" + f.Name
	}
	return "--" + f.Name
}

// bashScript completes commands, each command's flags, and the values of --account and
// --provider (files for the other flags that take one).
func bashScript(cmds []cmdFlags) string {
	var b strings.Builder
	b.WriteString(`# emitop completion for bash: source <(emitop completion bash)
_emitop() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd="" cfg=() i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --config|-config) cfg=(--config "${COMP_WORDS[i+1]}"); ((i++)) ;;
      -*) ;;
      *) [[ -z $cmd ]] && cmd=${COMP_WORDS[i]} ;;
    esac
  done
  case $prev in
`)
	for _, name := range []string{"account", "provider"} {
		fmt.Fprintf(&b, "    --%s|-%s) COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return ;;\n", name, name, valueFlags[name])
	}
	// Flags naming a file complete file names; other flags with a value complete nothing.
	var files, values []string
	seen := map[string]bool{}
	for _, c := range cmds {
		for _, f := range c.flags {
			if isBool(f) || valueFlags[f.Name] != "" || seen[f.Name] {
				continue
			}
			seen[f.Name] = true
			forms := []string{dashed(f)}
			if len(f.Name) > 1 {
				forms = append(forms, "-"+f.Name)
			}
			if pathFlags[f.Name] {
				files = append(files, forms...)
			} else {
				values = append(values, forms...)
			}
		}
	}
	slices.Sort(files)
	slices.Sort(values)
	fmt.Fprintf(&b, "    %s) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", strings.Join(files, "|"))
	fmt.Fprintf(&b, "    %s) COMPREPLY=(); return ;;\n  esac\n  case $cmd in\n", strings.Join(values, "|"))
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
		words := []string{}
		for _, f := range c.flags {
			words = append(words, dashed(f))
		}
		if c.name == "completion" {
			words = []string{"bash", "zsh", "fish"}
		}
		if c.name == "dashboard" {
			fmt.Fprintf(&b, "    \"\")\n      if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"%s\" -- \"$cur\"))\n", strings.Join(words, " "))
			b.WriteString("      else COMPREPLY=($(compgen -W \"@COMMANDS@\" -- \"$cur\")); fi ;;\n")
		}
		fmt.Fprintf(&b, "    %s) COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")) ;;\n", c.name, strings.Join(words, " "))
	}
	b.WriteString("  esac\n}\ncomplete -F _emitop emitop\n")
	return strings.ReplaceAll(b.String(), "@COMMANDS@", strings.Join(names, " "))
}

// fishScript completes the same as bashScript, with each command's summary and each
// flag's usage as descriptions.
func fishScript(cmds []cmdFlags) string {
	var b strings.Builder
	b.WriteString("# emitop completion for fish: emitop completion fish | source\ncomplete -c emitop -f\n")
	quote := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'" }
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	for _, c := range cmds {
		fmt.Fprintf(&b, "complete -c emitop -n 'not __fish_seen_subcommand_from %s' -a %s -d %s\n",
			strings.Join(names, " "), c.name, quote(c.summary))
		cond := "__fish_seen_subcommand_from " + c.name
		if c.name == "dashboard" {
			cond = "not __fish_seen_subcommand_from " + strings.Join(names, " ")
		}
		if c.name == "completion" {
			fmt.Fprintf(&b, "complete -c emitop -n %s -a 'bash zsh fish'\n", quote(cond))
		}
		for _, f := range c.flags {
			opt := "-l " + f.Name
			if len(f.Name) == 1 {
				opt = "-o " + f.Name
			}
			value := ""
			switch {
			case f.Name == "account":
				value = " -x -a '(emitop completion accounts 2>/dev/null)'"
			case f.Name == "provider":
				value = " -x -a " + quote(valueFlags["provider"])
			case pathFlags[f.Name]:
				value = " -r -F"
			case !isBool(f):
				value = " -x"
			}
			fmt.Fprintf(&b, "complete -c emitop -n %s %s%s -d %s\n", quote(cond), opt, value, quote(model.Line(f.Usage, 80)))
		}
	}
	return b.String()
}
