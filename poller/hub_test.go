package poller

import (
	"testing"
	"time"

	"emitop/model"
)

func TestHubLatestWinsAndNeverBlocks(t *testing.T) {
	h := NewHub()
	slow, cancelSlow := h.Subscribe()
	defer cancelSlow()
	fast, cancelFast := h.Subscribe()
	defer cancelFast()

	done := make(chan struct{})
	go func() {
		for i := 1; i <= 1000; i++ {
			h.Publish(model.Snapshot{At: time.Unix(int64(i), 0)})
			select {
			case s := <-fast:
				if s.At.Unix() != int64(i) {
					t.Errorf("fast subscriber got %d, want %d", s.At.Unix(), i)
				}
			case <-time.After(time.Second):
				t.Errorf("fast subscriber starved at %d", i)
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a subscriber that never reads")
	}
	if s := <-slow; s.At.Unix() != 1000 {
		t.Fatalf("slow subscriber got %d, want the newest (1000)", s.At.Unix())
	}
}

func TestHubSubscribeGetsLastAndCancelCloses(t *testing.T) {
	h := NewHub()
	h.Publish(model.Snapshot{At: time.Unix(7, 0)})
	ch, cancel := h.Subscribe()
	if s := <-ch; s.At.Unix() != 7 {
		t.Fatalf("late subscriber got %d, want 7", s.At.Unix())
	}
	cancel()
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel still open after cancel")
	}
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after cancel", n)
	}
	h.Publish(model.Snapshot{}) // must not panic on a closed subscriber
}
