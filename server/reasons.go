package server

import (
	"github.com/ssh-burn/chat/internal/ops"
	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/ui"
)

// The label values of the server's counter vectors. Each counter is
// incremented only with a value of its own type, and every value is in the
// list below it (a test reads the source to hold that), so every series
// exists, at 0, from the start: rate() and alerts see a fresh replica.

// connRefusal is why a connection was cut before its chat
// (chat_connections_refused_total). The per-address limits add their
// verdicts' reasons (connVerdict).
type connRefusal string

const refusedHandshakeTimeout connRefusal = "handshake timeout"

// connVerdict is the label of a refusal by Limiter.Admit.
func connVerdict(v limits.Verdict) connRefusal { return connRefusal(v.Reason()) }

var connRefusals = []connRefusal{
	refusedHandshakeTimeout,
	connVerdict(limits.TooManyNew), connVerdict(limits.TooManyOpen), connVerdict(limits.TableFull),
}

// joinRefusal is why a session was turned away before its chat
// (chat_joins_refused_total). The per-address limits add their verdicts'
// reasons (joinVerdict).
type joinRefusal string

const (
	refusedCommand     joinRefusal = "command"
	refusedBusy        joinRefusal = "busy"
	refusedFull        joinRefusal = "full"
	refusedSealed      joinRefusal = "sealed"
	refusedNotFound    joinRefusal = "not found"
	refusedGivenAway   joinRefusal = "given away"
	refusedMistyped    joinRefusal = "mistyped"
	refusedClosed      joinRefusal = "closed"
	refusedServiceFull joinRefusal = "service full"
	refusedUnavailable joinRefusal = "unavailable"
	refusedError       joinRefusal = "error"
)

// joinVerdict is the label of a refusal by the per-address limits while a
// seat is taken.
func joinVerdict(v limits.Verdict) joinRefusal { return joinRefusal(v.Reason()) }

var joinRefusals = []joinRefusal{
	refusedCommand, refusedBusy, refusedFull, refusedSealed, refusedNotFound, refusedGivenAway,
	refusedMistyped, refusedClosed, refusedServiceFull, refusedUnavailable, refusedError,
	joinVerdict(limits.TooManyRooms), joinVerdict(limits.TooManyFailedJoins), joinVerdict(limits.OverBudget),
	joinVerdict(limits.Headroom), joinVerdict(limits.TableFull),
}

// messageRefusal is why the server's limits refused a message
// (chat_messages_refused_total). The byte budget adds its verdicts'
// reasons (messageVerdict).
type messageRefusal string

const refusedTooFast messageRefusal = "too fast"

// messageVerdict is the label of a message refused by Limiter.Spend.
func messageVerdict(v limits.Verdict) messageRefusal { return messageRefusal(v.Reason()) }

var messageRefusals = []messageRefusal{
	refusedTooFast,
	messageVerdict(limits.OverBudget), messageVerdict(limits.Headroom), messageVerdict(limits.TableFull),
}

// storeOp is a store operation whose failures are counted
// (chat_store_errors_total).
type storeOp string

const (
	opJoin    storeOp = "join"
	opSend    storeOp = "send"
	opDestroy storeOp = "destroy"
	opLeave   storeOp = "leave"
)

var storeOps = []storeOp{opJoin, opSend, opDestroy, opLeave}

// Ends that only the server sees, beside the screen's own (ui.Ending).
const (
	endingConnectionLost ui.Ending = "connection lost"
	endingError          ui.Ending = "error"
)

// sessionEndings are the labels of chat_sessions_ended_total: the
// screen's endings and the server's own.
var sessionEndings = []ui.Ending{
	ui.EndingLeft, ui.EndingDestroyedBySelf, ui.EndingDestroyedByPartner, ui.EndingExpired,
	ui.EndingRoomVanished, ui.EndingRoomLost, ui.EndingFellBehind, ui.EndingSeatLost, ui.EndingReplaced,
	ui.EndingShutdown, ui.EndingIdle, ui.EndingMaxSession,
	endingConnectionLost, endingError,
}

// initCounters makes every known series of the counter vectors, at 0.
func initCounters(m *ops.Metrics) {
	for _, r := range connRefusals {
		m.ConnectionsRefused.WithLabelValues(string(r))
	}
	for _, r := range joinRefusals {
		m.JoinsRefused.WithLabelValues(string(r))
	}
	for _, r := range messageRefusals {
		m.MessagesRefused.WithLabelValues(string(r))
	}
	for _, op := range storeOps {
		m.StoreErrors.WithLabelValues(string(op))
	}
	for _, e := range sessionEndings {
		m.SessionsEnded.WithLabelValues(string(e))
	}
}
