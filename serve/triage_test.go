package serve

import (
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"emitop/config"
	"emitop/model"
)

// TestTriageCommands: `ssh -t HOST account NAME` opens the dashboard on that account's
// view, `ssh -t HOST doc NUMBER` on the document's detail, and any other command is
// refused with one line saying what works.
func TestTriageCommands(t *testing.T) {
	key, line := newKey(t)
	r := startRig(t, []config.Operator{{Name: "ana", Role: config.RoleOperator, Keys: []string{line}}}, nil)
	s := snapshotWith("alegra-co")
	s.Accounts = append(s.Accounts, snapshotWith("sv-main").Accounts...)
	s.Accounts[1].Account.Provider = "sv-dte"
	rejected := &model.Problem{Provider: "sv-dte", Class: model.ClassCertificate, Verdict: model.VerdictEscalate, Code: "CERT-9"}
	s.Accounts[1].Documents = []model.Document{{Account: "sv-main", Provider: "sv-dte", ID: "a1", Number: "DTE-01-77", Status: model.StatusRejected, Problem: rejected}}
	r.hub.Publish(s)

	cases := []struct {
		command string
		want    string
	}{
		{"account sv-main", "Account sv-main · sv-dte"},
		{"doc DTE-01-77", "VERDICT ESCALATE"},
		{"rm -rf /", "emitop: unknown command"},
	}
	for _, c := range cases {
		t.Run(c.command, func(t *testing.T) {
			client := r.login(t, key)
			sess, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if err := sess.RequestPty("xterm-256color", 30, 100, gossh.TerminalModes{}); err != nil {
				t.Fatal(err)
			}
			out, err := sess.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			sess.Stderr = &syncBuffer{}
			sc := newScreen(out)
			if err := sess.Start(c.command); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(sc.text()+sess.Stderr.(*syncBuffer).String(), c.want) {
				if time.Now().After(deadline) {
					t.Fatalf("%q: waiting for %q; the screen shows:\n%s%s", c.command, c.want, sc.text(), sess.Stderr.(*syncBuffer).String())
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
