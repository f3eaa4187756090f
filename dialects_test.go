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
	type rule struct {
		name   string
		word   *regexp.Regexp
		prefix string // base-name prefix of the dialect's own files in poller/
	}
	var rules []rule
	for _, name := range poller.DialectNames() {
		rules = append(rules, rule{
			name:   name,
			word:   regexp.MustCompile(`(?i)(^|[^a-z0-9])` + regexp.QuoteMeta(name) + `($|[^a-z0-9])`),
			prefix: strings.ReplaceAll(name, "-", ""),
		})
	}
	if len(rules) == 0 {
		t.Fatal("no dialects")
	}
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "sandbox", "testdata", ".git":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		fset := token.NewFileSet()
		var sc scanner.Scanner
		sc.Init(fset.AddFile(path, -1, len(src)), src, nil, 0)
		for {
			pos, tok, lit := sc.Scan()
			if tok == token.EOF {
				break
			}
			if tok != token.STRING {
				continue
			}
			for _, r := range rules {
				own := filepath.Dir(path) == "poller" && strings.HasPrefix(filepath.Base(path), r.prefix)
				if !own && r.word.MatchString(lit) {
					t.Errorf("%s: provider %q named in %s: ask its dialect instead", fset.Position(pos), r.name, lit)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("only %d files checked: is the test running at the repository's root?", checked)
	}
}
