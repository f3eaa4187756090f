package serve

import (
	"context"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"emitop/config"
	"emitop/model"
	"emitop/store"
)

// TestViewerRetryRefusedAndRecorded: a viewer's session shows a rejected document from the
// hub, the viewer presses R on it, the dashboard says no on one line, and the store holds
// the refused retry with the viewer's name and key fingerprint.
func TestViewerRetryRefusedAndRecorded(t *testing.T) {
	vkey, vline := newKey(t)
	r := startRig(t, []config.Operator{{Name: "victor", Role: config.RoleViewer, Keys: []string{vline}}}, nil)
	s := snapshotWith("sv-main")
	now := time.Now()
	s.Accounts[0].Account.Provider = "sv-dte"
	s.Accounts[0].Documents = []model.Document{{
		Account: "sv-main", Provider: "sv-dte", ID: "a1b2", Number: "DTE-01-0000042", Status: model.StatusRejected,
		Problem: &model.Problem{Provider: "sv-dte", Status: 400, Code: "096", Class: model.ClassCertificate,
			Verdict: model.VerdictEscalate, Message: "certificado vencido"},
		Attempts: 1, FirstSeen: now, Changed: now,
	}}
	r.hub.Publish(s)

	c := r.login(t, vkey)
	_, sc, in := openTyping(t, c, 120, 30)
	if !sc.waitFor("DTE-01-0000042", wait) {
		t.Fatalf("the rejected document is not shown; got:\n%s", sc.text())
	}
	if _, err := in.Write([]byte("R")); err != nil {
		t.Fatal(err)
	}
	if !sc.waitFor("viewers see everything and change nothing", wait) {
		t.Fatalf("the refusal is not shown; got:\n%s", sc.text())
	}
	if sc.waitFor("Retry 1 document", 200*time.Millisecond) {
		t.Fatal("a viewer got the retry dialog")
	}

	ctx := context.Background()
	if err := r.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	acts, err := r.store.Actions(ctx, store.ActionFilter{Account: "sv-main"})
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 1 {
		t.Fatalf("want the one refusal recorded, got %+v", acts)
	}
	a := acts[0]
	if a.Kind != "retry" || a.DocID != "a1b2" || a.Operator != "victor" ||
		a.Fingerprint != gossh.FingerprintSHA256(vkey.PublicKey()) || a.Outcome != "refused: viewer" {
		t.Errorf("recorded %+v", a)
	}
}
