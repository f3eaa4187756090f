package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"emitop/internal/tooltest"
)

// completionRig is emitop on PATH (the scripts call it for account names) and two
// configurations: the default one, and one named with --config.
func completionRig(t *testing.T) (env []string, other string) {
	t.Helper()
	dir := t.TempDir()
	account := func(name string) string {
		return "[[account]]\nname = \"" + name + "\"\nprovider = \"certifactu\"\nbase_url = \"https://x.example\"\napi_key = \"k\"\n"
	}
	def, other := filepath.Join(dir, "default.toml"), filepath.Join(dir, "other.toml")
	os.WriteFile(def, []byte(account("cf-madrid")+account("cf-sevilla")), 0o600)
	os.WriteFile(other, []byte(account("elsewhere")), 0o600)
	bin := emitopBinary(t)
	return append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"), "EMITOP_CONFIG="+def), other
}

// completionCases are command lines (the last word being completed) and what must be
// offered, in every shell.
func completionCases(other string) []struct{ line, want string } {
	return []struct{ line, want string }{
		{"emitop po", "poll"},
		{"emitop re", "report retry"},
		{"emitop poll --met", "--metrics-listen"},
		{"emitop serve --met", "--metrics-listen"},
		{"emitop report --si", "--since"},
		{"emitop --acc", "--account"},
		{"emitop history --account cf-", "cf-madrid cf-sevilla"},
		{"emitop --config " + other + " retry --account ", "elsewhere"},
		{"emitop explain --provider sv", "sv-dte"},
		{"emitop completion ", "bash fish zsh"},
	}
}

// words splits a command line as a shell would for completion: a trailing space starts an
// empty word.
func words(line string) []string { return strings.Split(line, " ") }

func TestCompletionBashAndZsh(t *testing.T) {
	env, other := completionRig(t)
	for _, shell := range []string{"bash", "zsh"} {
		t.Run(shell, func(t *testing.T) {
			bin := tooltest.Need(t, shell, shell)
			code, script, errs := runCmd("completion", shell)
			if code != 0 {
				t.Fatalf("completion %s: %d %s", shell, code, errs)
			}
			file := filepath.Join(t.TempDir(), "emitop."+shell)
			os.WriteFile(file, []byte(script), 0o600)
			for _, c := range completionCases(other) {
				w := words(c.line)
				quoted := make([]string, len(w))
				for i, x := range w {
					quoted[i] = "'" + x + "'"
				}
				prog := "source " + file + "; COMP_WORDS=(" + strings.Join(quoted, " ") + "); COMP_CWORD=" +
					strconv.Itoa(len(w)-1) + "; _emitop; printf '%s\\n' \"${COMPREPLY[@]}\""
				if shell == "zsh" {
					// As an interactive zsh has it: compinit loaded, and bash functions run
					// with ksharrays, as bashcompinit runs them.
					prog = "autoload -U compinit && compinit -u; setopt ksharrays; " + prog
				}
				cmd := exec.Command(bin, "-c", prog)
				cmd.Env = env
				out, err := cmd.CombinedOutput()
				got := strings.Fields(string(out))
				if shell == "zsh" {
					// zsh's compgen offers every word; its completion system keeps those
					// that start with the word under the cursor.
					var kept []string
					for _, g := range got {
						if strings.HasPrefix(g, w[len(w)-1]) {
							kept = append(kept, g)
						}
					}
					got = kept
				}
				if err != nil || strings.Join(sorted(got), " ") != c.want {
					t.Errorf("%s: %q offers %q (%v), want %q", shell, c.line, got, err, c.want)
				}
			}
		})
	}
}

func TestCompletionFish(t *testing.T) {
	fish := tooltest.Need(t, "fish", "fish")
	env, other := completionRig(t)
	_, script, _ := runCmd("completion", "fish")
	file := filepath.Join(t.TempDir(), "emitop.fish")
	os.WriteFile(file, []byte(script), 0o600)
	for _, c := range completionCases(other) {
		if strings.Contains(c.line, "--config") {
			continue // fish reads the configuration from where emitop looks by default
		}
		cmd := exec.Command(fish, "--no-config", "-c", "source "+file+"; complete -C '"+c.line+"'")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if word, _, _ := strings.Cut(l, "\t"); word != "" {
				got = append(got, word)
			}
		}
		if err != nil || strings.Join(sorted(got), " ") != c.want {
			t.Errorf("fish: %q offers %q (%v), want %q", c.line, got, err, c.want)
		}
	}
}

func TestCompletionUsage(t *testing.T) {
	for _, args := range [][]string{{"completion"}, {"completion", "powershell"}, {"completion", "bash", "zsh"}} {
		if code, _, errs := runCmd(args...); code != 2 || !strings.Contains(errs, "bash") {
			t.Errorf("%v: %d %q", args, code, errs)
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
