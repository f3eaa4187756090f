package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
)

// What one stranger can hold of the metrics server: a scraper needs one connection and
// one request at a time, and its scrape timeout is seconds.
const (
	maxConns        = 16
	maxScrapes      = 4 // scrapes served at once; more are answered 503
	scrapeTimeout   = 10 * time.Second
	maxHeaderBytes  = 8 << 10
	shutdownTimeout = 5 * time.Second
)

// readHeaderTimeout is how long a connection may take to send its request's headers (a
// variable so that a test of stalled clients need not wait 5 s).
var readHeaderTimeout = 5 * time.Second

// Handler serves the families in the Prometheus text format (or what the scraper
// negotiates), at most maxScrapes at once, each within scrapeTimeout.
func (m *Metrics) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:            m.reg,
		MaxRequestsInFlight: maxScrapes,
		Timeout:             scrapeTimeout,
	}))
}

// Serve answers GET /metrics on l until ctx ends, then closes l and the connections
// within shutdownTimeout. Connections, header sizes and the time to send headers are
// bounded: a client that holds connections open or never finishes its request costs a
// bounded share, for a bounded time.
func (m *Metrics) Serve(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readHeaderTimeout,
		WriteTimeout:      scrapeTimeout + 5*time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(netutil.LimitListener(l, maxConns)) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shut)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	srv.Close()
	return nil
}
