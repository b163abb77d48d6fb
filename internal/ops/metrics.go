package ops

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are what a replica counts. No label ever carries a room ID, a
// name, a message or a client address: labels are a handful of fixed
// words each (reasons, operations), so the series stay few and say nothing
// about anyone.
type Metrics struct {
	// Sessions is the number of chat sessions open now.
	Sessions prometheus.Gauge
	// RoomsCreated and Messages count rooms opened and messages sent
	// through this replica.
	RoomsCreated prometheus.Counter
	Messages     prometheus.Counter
	// JoinsRefused counts sessions turned away before their chat began,
	// by reason (full, not found, mistyped, busy, ...).
	JoinsRefused *prometheus.CounterVec
	// SessionsEnded counts chats that ended, by reason (left, destroyed,
	// expired, idle, ...).
	SessionsEnded *prometheus.CounterVec
	// Delivery is the time from a message's sending to this replica
	// handing it to the partner's screen.
	Delivery prometheus.Histogram
	// StoreErrors counts failed store operations, by operation.
	StoreErrors *prometheus.CounterVec
	// MessagesRefused counts messages the server's policy refused, by
	// reason (sent too fast, the address's byte budget, headroom kept
	// for newcomers while Redis fills).
	MessagesRefused *prometheus.CounterVec
	// ConnectionsRefused counts connections cut before a chat, by reason
	// (per-address limits, handshake timeouts).
	ConnectionsRefused *prometheus.CounterVec
}

// NewMetrics registers a replica's metrics, and Go's and the process's
// own, with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chat_sessions", Help: "Chat sessions open on this replica.",
		}),
		RoomsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chat_rooms_created_total", Help: "Rooms created through this replica.",
		}),
		Messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chat_messages_total", Help: "Messages sent through this replica.",
		}),
		JoinsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_joins_refused_total", Help: "Sessions turned away before their chat began, by reason.",
		}, []string{"reason"}),
		SessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_sessions_ended_total", Help: "Chat sessions that ended, by reason.",
		}, []string{"reason"}),
		Delivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "chat_message_delivery_seconds",
			Help: "Time from a message's sending to this replica handing it to the partner's screen.",
			// From well under a millisecond (one replica) to the seconds a
			// Redis outage can hold a message back.
			Buckets: prometheus.ExponentialBucketsRange(0.0002, 60, 16),
		}),
		StoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_store_errors_total", Help: "Failed room store operations, by operation.",
		}, []string{"op"}),
		MessagesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_messages_refused_total", Help: "Messages the server's limits refused, by reason.",
		}, []string{"reason"}),
		ConnectionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chat_connections_refused_total", Help: "Connections cut before a chat, by reason.",
		}, []string{"reason"}),
	}
	reg.MustRegister(
		m.Sessions, m.RoomsCreated, m.Messages, m.JoinsRefused, m.SessionsEnded,
		m.Delivery, m.StoreErrors, m.MessagesRefused, m.ConnectionsRefused,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Delivered records a message handed to a screen, sent at sent.
func (m *Metrics) Delivered(sent time.Time) {
	m.Delivery.Observe(max(time.Since(sent), 0).Seconds())
}
