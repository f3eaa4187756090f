package serve

import (
	"net"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// limiterEntries bounds how many remote addresses the login limiter remembers; the least
// recently seen is forgotten first.
const limiterEntries = 4096

// loginLimiter rations connections per remote IP. Every login begins with a connection,
// whether its key is then let in or refused, so a client trying keys is slowed as much as
// one opening dashboards; wish's session limiter, which runs after authentication, never
// sees the refused ones.
type loginLimiter struct {
	rate  rate.Limit
	burst int

	mu    sync.Mutex
	addrs *lru.Cache[string, *rate.Limiter]
}

func newLoginLimiter(r rate.Limit, burst int) *loginLimiter {
	addrs, _ := lru.New[string, *rate.Limiter](limiterEntries) // errors only on a size ≤ 0
	return &loginLimiter{rate: r, burst: burst, addrs: addrs}
}

// allow takes a token of addr's IP, reporting whether one was left.
func (l *loginLimiter) allow(addr net.Addr) bool {
	ip := addr.String()
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	l.mu.Lock()
	lim, ok := l.addrs.Get(ip)
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.addrs.Add(ip, lim)
	}
	l.mu.Unlock()
	return lim.Allow()
}
