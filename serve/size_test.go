package serve

import (
	"regexp"
	"strconv"
	"testing"

	"emitop/config"
)

// cursorRow finds every cursor position the renderer writes.
var cursorRow = regexp.MustCompile(`\x1b\[(\d+);(\d+)H`)

// maxRow is the lowest row the session's output has drawn on.
func (sc *screen) maxRow() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	most := 0
	for _, m := range cursorRow.FindAllStringSubmatch(sc.raw.String(), -1) {
		if n, err := strconv.Atoi(m[1]); err == nil {
			most = max(most, n)
		}
	}
	return most
}

// TestHugeTerminalIsClamped: a client that asks for a 40000×40000 terminal, then resizes
// it to 60000×60000, gets a dashboard of at most maxWidth×maxHeight cells: the server
// never composes a frame the size the client claims.
func TestHugeTerminalIsClamped(t *testing.T) {
	key, line := newKey(t)
	r := startRig(t, []config.Operator{{Name: "alice", Role: config.RoleOperator, Keys: []string{line}}}, nil)
	c := r.login(t, key)
	sess, sc := openDashboard(t, c, 40000, 40000)
	if !sc.waitFor("waiting for the first poll", wait) {
		t.Fatalf("no dashboard; got:\n%.2000s", sc.text())
	}
	// The dashboard fills the screen it is given: its last row is the clamped height.
	if !sc.waitFor("quit", wait) || sc.maxRow() != maxHeight {
		t.Fatalf("drew down to row %d, want the %d rows of the clamped terminal", sc.maxRow(), maxHeight)
	}
	if err := sess.WindowChange(60000, 60000); err != nil {
		t.Fatal(err)
	}
	r.hub.Publish(snapshotWith("wombat3"))
	if !sc.waitFor("wombat3", wait) {
		t.Fatal("no frame after the resize")
	}
	if row := sc.maxRow(); row > maxHeight {
		t.Fatalf("after a resize to 60000 rows, drew on row %d", row)
	}
	if w, h := clampSize(-3, 200); w != 0 || h != 200 {
		t.Fatalf("clampSize(-3, 200) = %d, %d", w, h)
	}
}
