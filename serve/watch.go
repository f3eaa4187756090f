package serve

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// watchedKey is the key of a connection's watchedConn in its context.
type watchedKey struct{}

// watchedConn is a connection that must start a dashboard soon after it offers a declared
// key: one that never does (`ssh -N`, or only sessions refused for want of a PTY) would
// otherwise hold a connection, and a slot of the server, for as long as it likes, unseen.
type watchedConn struct {
	net.Conn
	started atomic.Bool // a dashboard began on it
	armed   sync.Once
}

// arm starts the grace, once: when it ends without a dashboard, closed is told and the
// connection closed.
func (wc *watchedConn) arm(grace time.Duration, closed func()) {
	wc.armed.Do(func() {
		time.AfterFunc(grace, func() {
			if !wc.started.Load() {
				closed()
				wc.Close()
			}
		})
	})
}
