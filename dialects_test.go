package main

import (
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"emitop/poller"
)

// TestProviderNamesStayInTheirDialect fails when a provider's name appears in a string of
// non-test Go code outside its dialect's files (poller/<name>*.go, the name without its
// dashes) and the sandbox, which simulates the providers: every fact about a provider
// lives with its dialect, and the rest of emitop asks the dialect.
func TestProviderNamesStayInTheirDialect(t *testing.T) {
	found, checked, err := providerNamesOutside(".", poller.DialectNames())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Error(f)
	}
	if checked < 20 {
		t.Fatalf("only %d files checked: is the test running at the repository's root?", checked)
	}
}

// TestProviderNamesCheckCatchesThem: the check reports a name wherever it hides: in any
// package, in a raw string, in another provider's dialect file, in a folder called
// sandbox that is not the sandbox; and leaves the dialect's own files, the sandbox and
// tests alone.
func TestProviderNamesCheckCatchesThem(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"ui/keys.go":         "package ui\nvar a = \"Factus\"\n",
		"ui/raw.go":          "package ui\nvar b = `x-api-key for sv-dte`\n",
		"ui/sandbox/demo.go": "package sandbox\nvar c = \"alegra-co\"\n",
		"poller/alegra.go":   "package poller\nvar d = \"factus\"\nvar e = \"alegra\"\n",
		"poller/factus.go":   "package poller\nvar f = \"factus\"\n",
		"sandbox/alforse.go": "package sandbox\nvar g = \"alforse\"\n",
		"ui/keys_test.go":    "package ui\nvar h = \"alforse\"\n",
		"config/provider.go": "package config\n// alforse in a comment is prose\nvar i = \"certifactus\"\n",
	}
	for name, src := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	found, _, err := providerNamesOutside(root, []string{"alegra", "sv-dte", "certifactu", "factus", "alforse"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ui/keys.go:2:9 factus", "ui/raw.go:2:9 sv-dte", "ui/sandbox/demo.go:2:9 alegra", "poller/alegra.go:2:9 factus"}
	got := strings.Join(found, "\n")
	for _, w := range want {
		file, rest, _ := strings.Cut(w, " ")
		if !strings.Contains(got, file+": provider \""+rest+"\"") {
			t.Errorf("not reported: %s\nreported:\n%s", w, got)
		}
	}
	if len(found) != len(want) {
		t.Errorf("%d reported, want %d:\n%s", len(found), len(want), got)
	}
}

// providerNamesOutside lists, for the Go files under root, every string literal of
// non-test code that names one of the providers outside that provider's dialect files
// (poller/<name without dashes>*.go) and the sandbox (the folder sandbox at root), with
// how many files it read.
func providerNamesOutside(root string, providers []string) (found []string, checked int, err error) {
	type rule struct {
		name   string
		word   *regexp.Regexp
		prefix string // base-name prefix of the dialect's own files in poller/
	}
	var rules []rule
	for _, name := range providers {
		rules = append(rules, rule{
			name:   name,
			word:   regexp.MustCompile(`(?i)(^|[^a-z0-9])` + regexp.QuoteMeta(name) + `($|[^a-z0-9])`),
			prefix: strings.ReplaceAll(name, "-", ""),
		})
	}
	if len(rules) == 0 {
		return nil, 0, os.ErrInvalid
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "sandbox" || d.Name() == "testdata" || d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		fset := token.NewFileSet()
		var sc scanner.Scanner
		sc.Init(fset.AddFile(rel, -1, len(src)), src, nil, 0)
		for {
			pos, tok, lit := sc.Scan()
			if tok == token.EOF {
				break
			}
			if tok != token.STRING {
				continue
			}
			for _, r := range rules {
				own := filepath.ToSlash(filepath.Dir(rel)) == "poller" && strings.HasPrefix(filepath.Base(rel), r.prefix)
				if !own && r.word.MatchString(lit) {
					found = append(found, fset.Position(pos).String()+": provider \""+r.name+"\" named in "+lit+": ask its dialect instead")
				}
			}
		}
		return nil
	})
	return found, checked, err
}
