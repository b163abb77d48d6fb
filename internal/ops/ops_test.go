package ops

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(body)
}

func TestEndpointsSayWhatTheReplicaCanDo(t *testing.T) {
	var notReady atomic.Pointer[error]
	reg := prometheus.NewRegistry()
	sessions := prometheus.NewGauge(prometheus.GaugeOpts{Name: "chat_sessions", Help: "Open chat sessions."})
	reg.MustRegister(sessions)
	sessions.Set(3)
	srv := httptest.NewServer(Handler(Config{
		Ready: func() error {
			if err := notReady.Load(); err != nil {
				return *err
			}
			return nil
		},
		Metrics: reg,
	}))
	defer srv.Close()

	if code, _ := get(t, srv.URL+HealthPath); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	if code, _ := get(t, srv.URL+ReadyPath); code != http.StatusOK {
		t.Fatalf("readyz while ready: %d", code)
	}
	draining := ErrDraining
	notReady.Store(&draining)
	if code, body := get(t, srv.URL+ReadyPath); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Fatalf("readyz while draining: %d %q", code, body)
	}
	// Draining is not dying: the process still answers as alive.
	if code, _ := get(t, srv.URL+HealthPath); code != http.StatusOK {
		t.Fatalf("healthz while draining: %d", code)
	}
	if code, body := get(t, srv.URL+MetricsPath); code != http.StatusOK || !strings.Contains(body, "chat_sessions 3") {
		t.Fatalf("metrics: %d\n%s", code, body)
	}
	if code, _ := get(t, srv.URL+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("profiles are served without being asked for: %d", code)
	}
}

func TestProfilesOnlyWhenAsked(t *testing.T) {
	srv := httptest.NewServer(Handler(Config{Ready: func() error { return nil }, Metrics: prometheus.NewRegistry(), Pprof: true}))
	defer srv.Close()
	if code, body := get(t, srv.URL+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("pprof index: %d", code)
	}
}

func TestHealthcheckFindsTheListenerAsConfigured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(Config{Ready: func() error { return errors.New("store unreachable") }, Metrics: prometheus.NewRegistry()})}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// As -http is written: no host, every interface, or loopback.
	for _, addr := range []string{":" + port, "0.0.0.0:" + port, "127.0.0.1:" + port} {
		if err := Healthcheck(context.Background(), addr); err != nil {
			t.Errorf("healthcheck %s: %v (a replica that is not ready is still alive)", addr, err)
		}
	}
	ln.Close()
	if err := Healthcheck(context.Background(), "127.0.0.1:"+port); err == nil {
		t.Error("healthcheck passed with nothing listening")
	}
	if err := Healthcheck(context.Background(), "no-port"); err == nil {
		t.Error("healthcheck passed for a malformed address")
	}
}

// Every metric the operators' dashboards rely on is there, with Go's and
// the process's own.
func TestMetricsNamesAreServed(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.JoinsRefused.WithLabelValues("full").Inc()
	m.SessionsEnded.WithLabelValues("left").Inc()
	m.StoreErrors.WithLabelValues("send").Inc()
	m.ConnectionsRefused.WithLabelValues("rate").Inc()
	m.Delivered(time.Now())
	srv := httptest.NewServer(Handler(Config{Ready: func() error { return nil }, Metrics: reg}))
	defer srv.Close()
	_, body := get(t, srv.URL+MetricsPath)
	for _, name := range []string{
		"chat_sessions ", "chat_rooms_created_total ", "chat_messages_total ",
		`chat_joins_refused_total{reason="full"} 1`, `chat_sessions_ended_total{reason="left"} 1`,
		"chat_message_delivery_seconds_bucket", `chat_store_errors_total{op="send"} 1`,
		`chat_connections_refused_total{reason="rate"} 1`, "go_goroutines ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, name) {
			t.Errorf("metrics lack %q", name)
		}
	}
}
