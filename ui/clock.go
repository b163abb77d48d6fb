package ui

import (
	"sync"
	"time"
)

// Clock ticks on every wall-clock second for every chat screen in the
// process: one timer, however many screens count down. Screens wait for a
// tick in the same command that waits for their room's events, so a
// countdown costs no goroutine and no timer of its own, and both people in
// a room see their countdowns change at the same instant.
type Clock struct {
	mu   sync.Mutex
	now  time.Time     // the time of the last tick
	next chan struct{} // closed at the next tick

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewClock starts a clock; Stop it when no screen needs it any more.
func NewClock() *Clock {
	c := &Clock{now: time.Now(), next: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *Clock) run() {
	defer close(c.done)
	timer := time.NewTimer(untilNextSecond(time.Now()))
	defer timer.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-timer.C:
			c.mu.Lock()
			c.now = now
			close(c.next)
			c.next = make(chan struct{})
			c.mu.Unlock()
			timer.Reset(untilNextSecond(time.Now()))
		}
	}
}

func untilNextSecond(now time.Time) time.Duration {
	return now.Truncate(time.Second).Add(time.Second).Sub(now)
}

// after returns a channel that is closed at the first tick later than
// seen: at once if there has been one already, so a screen busy with other
// things never misses a second.
func (c *Clock) after(seen time.Time) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.After(seen) {
		return alreadyTicked
	}
	return c.next
}

var alreadyTicked = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Now is the time of the clock's last tick.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Stop stops the clock: screens still waiting get no more ticks. It is
// idempotent, and the clock's goroutine has ended when it returns.
func (c *Clock) Stop() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}
