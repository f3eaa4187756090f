package retry

import (
	"container/list"
	"sync"
)

// Memory holds, per document, the JSON a resend of it is built from where that takes more
// than its ID (sv-dte's stored DTE, which only a read of the document returns), as the
// engine last read it or sent it, with the emission the provider then showed. A page of
// the listing of rejected documents that shows the same emission (the same answer, from
// the same processing) shows that the provider still holds that JSON: the document is
// resent without being read. Engines that share a Memory (one process's batches, one
// after the other) share what they hold; it is bounded, dropping what it learned longest
// ago. A nil *Memory holds nothing.
type Memory struct {
	mu      sync.Mutex
	size    int                         // bytes held
	entries map[memoryKey]*list.Element // of *memoryEntry
	order   list.List                   // oldest first
}

type memoryKey struct{ account, id string }

type memoryEntry struct {
	key      memoryKey
	body     []byte
	emission string
}

// memoryBytes bounds what a Memory holds: a DTE is a few KiB.
const memoryBytes = 16 << 20

// NewMemory is an empty Memory.
func NewMemory() *Memory { return &Memory{entries: map[memoryKey]*list.Element{}} }

// keep holds body for the document, as the JSON the provider holds while it shows
// emission.
func (m *Memory) keep(account, id string, body []byte, emission string) {
	if m == nil || len(body) > memoryBytes {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memoryKey{account, id}
	if el, ok := m.entries[k]; ok {
		m.size -= len(el.Value.(*memoryEntry).body)
		m.order.Remove(el)
	}
	m.entries[k] = m.order.PushBack(&memoryEntry{key: k, body: append([]byte(nil), body...), emission: emission})
	m.size += len(body)
	for m.size > memoryBytes {
		e := m.order.Remove(m.order.Front()).(*memoryEntry)
		m.size -= len(e.body)
		delete(m.entries, e.key)
	}
}

// recall is the JSON held for the document when the provider shows the emission it was
// held with; nil otherwise, or when emission is "".
func (m *Memory) recall(account, id, emission string) []byte {
	if m == nil || emission == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.entries[memoryKey{account, id}]; ok && el.Value.(*memoryEntry).emission == emission {
		return el.Value.(*memoryEntry).body
	}
	return nil
}

// holds reports whether anything is held for the document.
func (m *Memory) holds(account, id string) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.entries[memoryKey{account, id}]
	return ok
}
