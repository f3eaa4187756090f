package poller

import (
	"sync"

	"emitop/model"
)

// Hub hands every published snapshot to its subscribers without ever waiting for one: each
// subscriber has a one-slot channel that holds only the newest snapshot, so a slow reader
// (a stuck SSH session) skips stale snapshots instead of slowing the poller.
type Hub struct {
	mu   sync.Mutex
	next int
	subs map[int]chan model.Snapshot
	last *model.Snapshot
}

// NewHub returns a hub with no subscribers.
func NewHub() *Hub { return &Hub{subs: map[int]chan model.Snapshot{}} }

// Subscribe returns a channel that receives the newest snapshot (at once, when one was
// already published) and a cancel function that closes it.
func (h *Hub) Subscribe() (<-chan model.Snapshot, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.next
	h.next++
	ch := make(chan model.Snapshot, 1)
	if h.last != nil {
		ch <- *h.last
	}
	h.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(h.subs, id)
			close(ch)
		})
	}
}

// Publish gives s to every subscriber, replacing a snapshot a subscriber has not read yet.
// It never blocks.
func (h *Hub) Publish(s model.Snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = &s
	for _, ch := range h.subs {
		select {
		case ch <- s:
			continue
		default:
		}
		select { // full: drop the stale snapshot, then there is room
		case <-ch:
		default:
		}
		select {
		case ch <- s:
		default:
		}
	}
}

// Subscribers reports how many subscribers are attached.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
