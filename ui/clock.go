package ui

import (
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Clock drives the countdown of every chat screen in the process: one
// timer, however many screens count down. A screen waits for its tick in
// the same goroutine that waits for its room's events, so a countdown costs
// no goroutine and no timer of its own.
//
// A countdown shows the seconds until its room's deadline, so it changes
// at that deadline's fraction of every second. The clock ticks every
// tickWidth and each tick wakes only the screens whose countdown changes
// then: both people in a room see theirs change at the same instant, no
// later than tickWidth after it should, and the screens of a busy server
// are spread over the second instead of all waking at once.
//
// The slots are narrow because the screens a tick wakes all become
// runnable at that instant, and whatever else is due then (a message on
// its way from one person to the other) waits behind them in the
// scheduler's queue: with 10,000 screens, slots of 10 ms woke about 100
// at once, several milliseconds of work; slots of 1 ms wake about 10. The
// clock's own goroutine wakes only for slots that have screens listening,
// and no more often than it takes for about wakeScreens of them to come
// due: every wake of the clock wakes a thread of the process, and with few
// screens, 1,000 wakes a second for one or two screens each cost more CPU
// (and the clients more, in smaller packets' worth of wake-ups) than the
// 100 of 10 ms slots did.
type Clock struct {
	mu      sync.Mutex
	slots   [ticksPerSecond]tickSlot
	screens int // listening, in every slot

	// joined tells the clock's goroutine that a slot it sleeps past may
	// have a screen now.
	joined chan struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

const (
	tickWidth      = time.Millisecond
	ticksPerSecond = int(time.Second / tickWidth)
	// wakeScreens is about how many screens one wake of the clock is
	// to tick, as long as that is within maxWakeGap.
	wakeScreens = 10
	maxWakeGap  = 10 * time.Millisecond
)

// tickSlot is the screens that tick at one fraction of the second.
type tickSlot struct {
	screens int           // listening (see listening)
	ticks   uint64        // how many times it ticked
	msg     tea.Msg       // its last tick, made once for all its screens
	next    chan struct{} // closed at its next tick
}

// NewClock starts a clock; Stop it when no screen needs it any more.
func NewClock() *Clock {
	c := &Clock{joined: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	for i := range c.slots {
		c.slots[i].next = make(chan struct{})
	}
	go c.run()
	return c
}

func (c *Clock) run() {
	defer close(c.done)
	woke := time.Now()
	last := slotAt(woke)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-timer.C:
		case <-c.joined:
		}
		now := time.Now()
		// Every slot whose moment has come since the last wake, in order
		// (the timer may fire late), but never more than a second's worth:
		// after the wall clock jumps, the countdowns follow it. The clock
		// sleeps through slots nobody listens to, as long as a second.
		due := (slotAt(now) - last + ticksPerSecond) % ticksPerSecond
		if now.Sub(woke) >= time.Second-tickWidth {
			due = ticksPerSecond
		}
		c.mu.Lock()
		for range due {
			last = (last + 1) % ticksPerSecond
			slot := &c.slots[last]
			if slot.screens == 0 {
				continue
			}
			slot.ticks++
			slot.msg = tickMsg(now)
			close(slot.next)
			slot.next = make(chan struct{})
		}
		last, woke = slotAt(now), now
		wait := max(c.untilListened(now), c.wakeGap())
		c.mu.Unlock()
		timer.Reset(wait)
	}
}

// untilListened is the time from now to the next tick of a slot that has
// screens; an hour when none has (a screen's arrival wakes the clock).
// Called with c.mu held.
func (c *Clock) untilListened(now time.Time) time.Duration {
	from := slotAt(now)
	for k := 1; k <= ticksPerSecond; k++ {
		if c.slots[(from+k)%ticksPerSecond].screens > 0 {
			return untilNextTick(now) + time.Duration(k-1)*tickWidth
		}
	}
	return time.Hour
}

// wakeGap is the least time between two wakes of the clock: about
// wakeScreens screens' worth of the second, within tickWidth and
// maxWakeGap. Called with c.mu held.
func (c *Clock) wakeGap() time.Duration {
	if c.screens == 0 {
		return tickWidth
	}
	return min(max(time.Second*wakeScreens/time.Duration(c.screens), tickWidth), maxWakeGap)
}

// listening counts a screen in slot while it waits for ticks (delta 1),
// or no more (-1).
func (c *Clock) listening(slot, delta int) {
	c.mu.Lock()
	c.screens += delta
	c.slots[slot].screens += delta
	first := c.slots[slot].screens == 1 && delta > 0
	c.mu.Unlock()
	if first {
		select {
		case c.joined <- struct{}{}:
		default:
		}
	}
}

// slotAt is the slot whose tick has come last at t.
func slotAt(t time.Time) int { return t.Nanosecond() / int(tickWidth) % ticksPerSecond }

// untilNextTick is the time from now to the next tick (measured on the
// monotonic clock, so a change of the wall clock does not stop it).
func untilNextTick(now time.Time) time.Duration {
	return tickWidth - time.Duration(now.Nanosecond())%tickWidth
}

// slotOf is the slot that ticks at t or, for a t between ticks, at the
// first tick after it.
func slotOf(t time.Time) int {
	return (t.Nanosecond() + int(tickWidth) - 1) / int(tickWidth) % ticksPerSecond
}

// ticks returns how many times slot has ticked, its last tick as a message,
// and a channel closed at its next tick.
func (c *Clock) tick(slot int) (ticks uint64, msg tea.Msg, next <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[slot]
	return s.ticks, s.msg, s.next
}

// Stop stops the clock: screens still waiting get no more ticks. It is
// idempotent, and the clock's goroutine has ended when it returns.
func (c *Clock) Stop() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}
