// Package ops is the operations HTTP listener: liveness, readiness,
// Prometheus metrics and, when asked, profiles. It is for orchestrators and
// operators, never for the people who chat, and never on the SSH port.
package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The paths the listener serves; probes and the healthcheck command use
// these.
const (
	HealthPath  = "/healthz"
	ReadyPath   = "/readyz"
	MetricsPath = "/metrics"
	pprofPrefix = "/debug/pprof/"
)

// Config is what the listener reports on.
type Config struct {
	// Ready says whether this replica should get new sessions: nil when it
	// should, otherwise why not (draining, the store unreachable).
	Ready func() error
	// Metrics are served in the Prometheus text format.
	Metrics prometheus.Gatherer
	// Pprof adds Go's profiles under /debug/pprof/. They show what the
	// server is doing, never what people say, but they are still for
	// operators only.
	Pprof bool
}

// Handler serves cfg's endpoints.
func Handler(cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		// The process answers: that is all liveness means here.
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET "+ReadyPath, func(w http.ResponseWriter, _ *http.Request) {
		if err := cfg.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET "+MetricsPath, promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{}))
	if cfg.Pprof {
		mux.HandleFunc(pprofPrefix, pprof.Index)
		mux.HandleFunc(pprofPrefix+"cmdline", pprof.Cmdline)
		mux.HandleFunc(pprofPrefix+"profile", pprof.Profile)
		mux.HandleFunc(pprofPrefix+"symbol", pprof.Symbol)
		mux.HandleFunc(pprofPrefix+"trace", pprof.Trace)
	}
	return mux
}

// NewServer returns an HTTP server for handler with timeouts that keep
// slow or idle clients from holding it; a CPU profile may take its time.
func NewServer(handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
	}
}

// healthcheckTimeout bounds the whole healthcheck.
const healthcheckTimeout = 2 * time.Second

// Healthcheck asks the listener at addr (as given to -http: ":9090",
// "0.0.0.0:9090", "[::]:9090" or "host:9090") whether the process serves.
// An address without a host, or with an unspecified one, is asked on
// loopback.
func Healthcheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("health address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + HealthPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health request: %w", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("health check: %s", res.Status)
	}
	return nil
}

// ErrDraining is the readiness answer of a replica that is shutting down.
var ErrDraining = errors.New("draining")
