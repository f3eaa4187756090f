package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"emitop/model"
	"emitop/retry"
)

// runClear deletes one failed document at its provider (a Factus bill the DIAN rejected,
// which blocks the account's next bills until deleted). It is an operator's act: it needs
// a reason, which is recorded, and a confirmation (typing the document's id, or --yes).
func runClear(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("clear", stderr)
	cfgPath, dbPath := storeFlags(fs)
	account := fs.String("account", "", "the document's account")
	doc := fs.String("doc", "", "the document's id")
	reason := fs.String("reason", "", "why it is deleted; recorded with the outcome")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	dry := fs.Bool("dry-run", false, "show what would be done, send nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *account == "" || *doc == "":
		return usagef("--account and --doc are required")
	case strings.TrimSpace(*reason) == "" && !*dry:
		return usagef("--reason is required: deleting a document is recorded with why")
	}
	if err := unconfirmed(stdin, *dry, *yes, "delete"); err != nil {
		return err
	}
	ctx, run, err := startAccountRun(*cfgPath, *dbPath, *account, retry.Options{Operator: "local", Reason: strings.TrimSpace(*reason)}, stdout, stderr)
	if err != nil {
		return err
	}
	defer run.Close()
	acc, st, r := run.acc, run.st, run.r
	target := model.Document{Account: acc.Name, Provider: acc.Provider, ID: *doc}
	if known, err := st.Document(ctx, acc.Name, *doc); err == nil {
		target = known
	}
	req, what, err := r.PlanClear(target)
	if errors.Is(err, retry.ErrNoClear) {
		return usagef("%s (%s): %v", acc.Name, acc.Provider, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "clear %s of %s: %s\n", model.Line(*doc, 80), acc.Name, what)
	fmt.Fprintf(stdout, "  %s %s  %s\n", req.Method, model.Line(req.URL, 0), strings.Join(req.Header, "  "))
	if req.Body != "" {
		fmt.Fprintf(stdout, "    %s\n", model.Line(req.Body, 0))
	}
	if *dry {
		fmt.Fprintln(stdout, "dry run: nothing sent")
		return nil
	}
	if !*yes {
		fmt.Fprintf(stdout, "This deletes the document at %s; it cannot be undone. Type its id to confirm: ", acc.Provider)
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(line) != *doc {
			fmt.Fprintln(stdout, "nothing sent")
			return exitError{1}
		}
	}
	var res model.RetryResult
	if run.here {
		res, err = r.Clear(ctx, target)
	} else {
		res, err = run.m.ClearElsewhere(ctx, target, retry.Options{Operator: "local", Reason: strings.TrimSpace(*reason)})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", res.Outcome, model.Line(res.Detail, 0))
	if res.Outcome != model.OutcomeCleared {
		return exitError{1}
	}
	return nil
}
