package ui

import (
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Clock drives the countdown of every chat screen in the process: one
// timer, however many screens count down. A screen waits for its tick in
// the same command that waits for its room's events, so a countdown costs
// no goroutine and no timer of its own.
//
// A countdown shows the seconds until its room's deadline, so it changes
// at that deadline's fraction of every second. The clock ticks every
// tickWidth and each tick wakes only the screens whose countdown changes
// then: both people in a room see theirs change at the same instant, no
// later than tickWidth after it should, and the screens of a busy server
// are spread over the second instead of all waking at once.
type Clock struct {
	mu    sync.Mutex
	slots [ticksPerSecond]tickSlot

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

const (
	tickWidth      = 10 * time.Millisecond
	ticksPerSecond = int(time.Second / tickWidth)
)

// tickSlot is the screens that tick at one fraction of the second.
type tickSlot struct {
	last time.Time     // the slot's last tick
	msg  tea.Msg       // last as a message, made once for all its screens
	next chan struct{} // closed at its next tick
}

// NewClock starts a clock; Stop it when no screen needs it any more.
func NewClock() *Clock {
	c := &Clock{stop: make(chan struct{}), done: make(chan struct{})}
	for i := range c.slots {
		c.slots[i].next = make(chan struct{})
	}
	go c.run()
	return c
}

func (c *Clock) run() {
	defer close(c.done)
	next := time.Now().Truncate(tickWidth).Add(tickWidth)
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-timer.C:
		}
		now := time.Now()
		c.mu.Lock()
		// Every slot whose moment has come, in order, even if the timer
		// fired late.
		for ; !next.After(now); next = next.Add(tickWidth) {
			slot := &c.slots[slotOf(next)]
			slot.last, slot.msg = next, tickMsg(next)
			close(slot.next)
			slot.next = make(chan struct{})
		}
		c.mu.Unlock()
		timer.Reset(time.Until(next))
	}
}

// slotOf is the slot that ticks at t or, for a t between ticks, at the
// first tick after it.
func slotOf(t time.Time) int {
	return (t.Nanosecond() + int(tickWidth) - 1) / int(tickWidth) % ticksPerSecond
}

// after returns a channel that is closed at the first tick of slot later
// than seen: at once if there has been one already, so a screen busy with
// other things never misses a change of its countdown.
func (c *Clock) after(slot int, seen time.Time) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.slots[slot].last.After(seen) {
		return alreadyTicked
	}
	return c.slots[slot].next
}

var alreadyTicked = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// tick is slot's last tick, as a message.
func (c *Clock) tick(slot int) tea.Msg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slots[slot].msg
}

// Stop stops the clock: screens still waiting get no more ticks. It is
// idempotent, and the clock's goroutine has ended when it returns.
func (c *Clock) Stop() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}
