package ui

import (
	"time"

	"github.com/ssh-burn/chat/store"
)

// Ends words the end of a chat exactly as the full screen does, for a
// chat shown another way (the plain line mode): one wording, one set of
// Endings, whichever way a person talks. It holds no screen: only what
// the words depend on.
type Ends struct{ m *Model }

// NewEnds returns the end words for the seat whose snapshot is snap, with
// the room's command join and its person's own command rejoin.
func NewEnds(snap store.Snapshot, join, rejoin string) *Ends {
	m := &Model{snap: snap, join: join, rejoin: rejoin, sealed: snap.Sealed, now: time.Now()}
	m.snap.History = nil
	if m.rejoin == "" {
		m.rejoin = m.join
	}
	return &Ends{m}
}

// Ended is the outcome of a seat whose room's stream ended with ev;
// unsent is what its person wrote that the room never confirmed.
func (e *Ends) Ended(ev store.EndedEvent, unsent []string) Outcome {
	return e.finish(e.m.endedText(ev), e.m.ending(ev), unsent)
}

// Lost is the outcome of a seat whose stream ended without a word.
func (e *Ends) Lost(unsent []string) Outcome {
	return e.finish("The connection to the room was lost.", EndingRoomLost, unsent)
}

// Left is the outcome of a person who left at now; sealed says whether
// the room was sealed to the two who met in it.
func (e *Ends) Left(now time.Time, sealed bool, unsent []string) Outcome {
	e.m.now, e.m.sealed = now, sealed
	return e.finish(e.m.leftText(), EndingLeft, unsent)
}

// Disconnected is the outcome of a chat the server ended (d).
func (e *Ends) Disconnected(d Disconnect, unsent []string) Outcome {
	return e.finish(d.Reason+e.m.livesOn(), d.Ending, unsent)
}

func (e *Ends) finish(text string, ending Ending, unsent []string) Outcome {
	e.m.outbox, e.m.done = e.m.outbox[:0], false
	for _, u := range unsent {
		e.m.outbox = append(e.m.outbox, outgoing{text: u})
	}
	e.m.finish(text, ending)
	return e.m.outcome
}

// FormatCountdown is d as the countdown shows it: whole seconds left,
// rounded up, as m:ss.
func FormatCountdown(d time.Duration) string { return formatCountdown(d) }
