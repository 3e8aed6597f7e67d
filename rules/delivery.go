package rules

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ruleState is a rule at work in an engine.
type ruleState struct {
	c *Compiled
	// Exactly one of immediate (log, event: run by the scanner) and
	// deliverer (run by the rule's delivery goroutine) is set.
	immediate func(*Match)
	deliverer Deliverer

	wake   chan struct{} // capacity 1: the outbox has grown
	cancel context.CancelFunc
	done   chan struct{} // closed when the delivery goroutine returns

	mu sync.Mutex
	// cursor is the next confirmation to evaluate, durable the one in the
	// store. The scanner changes them, under the engine's stepMu.
	cursor, durable uint64
	pending         []entry // the outbox, in confirmation order
	pendingBytes    int
	// full: a match did not fit in the outbox; the scanner leaves the
	// rule out until a match leaves it. settled counts the matches that
	// left, so that a scan that began before one left does not set full.
	full    bool
	settled uint64
	dead    int // dead letters in the store
	st      RuleStats
}

// entry is a match in an outbox.
type entry struct {
	conf uint64
	body []byte
}

// hasRoom reports whether the scanner may evaluate the rule, and the
// settled count the scan starts from.
func (rs *ruleState) hasRoom() (bool, uint64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return !rs.full, rs.settled
}

// wouldOverflow reports whether a match of n bytes, after added bytes of
// matches not yet committed, overflows the outbox. A match alone in an
// empty outbox always fits.
func (rs *ruleState) wouldOverflow(added, n, limit int) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	before := rs.pendingBytes + added
	return before > 0 && before+n > limit
}

func (rs *ruleState) durableCursor() uint64 {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.durable
}

// commit applies a committed scan, whose cursor was written if durable.
// The caller holds the engine's stepMu.
func (rs *ruleState) commit(s *scan, durable bool) {
	rs.mu.Lock()
	rs.cursor = s.cursor
	if durable {
		rs.durable = s.cursor
	}
	rs.pending = append(rs.pending, s.added...)
	rs.pendingBytes += s.bytes
	rs.full = s.full && rs.settled == s.settled
	rs.st.Matches += s.matches
	rs.st.EvalErrors += s.errs
	if s.lastErr != nil {
		rs.st.LastEvalError = truncate(s.lastErr.Error(), maxErrorLen)
	}
	rs.mu.Unlock()
	if len(s.added) > 0 {
		select {
		case rs.wake <- struct{}{}:
		default:
		}
	}
}

func (rs *ruleState) stats() RuleStats {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	st := rs.st
	st.Name = rs.c.Rule.Name
	st.Kind = rs.c.Rule.Action.Kind
	st.Cursor = rs.cursor
	st.Pending = len(rs.pending)
	st.PendingBytes = rs.pendingBytes
	st.DeadLetters = rs.dead
	return st
}

func (rs *ruleState) head() (entry, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.pending) == 0 {
		return entry{}, false
	}
	return rs.pending[0], true
}

// startDelivery starts the delivery goroutine of a rule that has a
// deliverer. The caller holds the engine's mu, and e.run is set.
func (e *Engine) startDelivery(rs *ruleState) {
	if rs.deliverer == nil {
		return
	}
	rn := e.run
	ctx, cancel := context.WithCancel(rn.ctx)
	rs.cancel, rs.done = cancel, make(chan struct{})
	rn.wg.Add(1)
	go func() {
		defer rn.wg.Done()
		defer close(rs.done)
		if err := e.deliverAll(ctx, rs); err != nil && ctx.Err() == nil {
			rn.fail(err)
		}
	}()
}

// stop stops the rule's delivery goroutine, if it runs, and waits for it.
func (rs *ruleState) stop() {
	if rs.cancel != nil {
		rs.cancel()
		<-rs.done
	}
}

// deliverAll delivers the rule's outbox, one match at a time, until ctx is
// done or the store fails.
func (e *Engine) deliverAll(ctx context.Context, rs *ruleState) error {
	for {
		en, ok := rs.head()
		if !ok {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-rs.wake:
				continue
			}
		}
		if err := e.deliverOne(ctx, rs, en); err != nil {
			return err
		}
	}
}

// deliverOne attempts a match until it is delivered or has failed
// MaxAttempts times, then takes it out of the outbox.
func (e *Engine) deliverOne(ctx context.Context, rs *ruleState, en entry) error {
	name := rs.c.Rule.Name
	d := &Delivery{Rule: name, ID: deliveryID(name, en.conf), Confirmation: en.conf, Body: en.body}
	for d.Attempt = 1; ; d.Attempt++ {
		actx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
		err := rs.deliverer.Deliver(actx, d)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			return e.settle(rs, en, nil)
		}
		msg := truncate(err.Error(), maxErrorLen)
		rs.mu.Lock()
		rs.st.FailedAttempts++
		rs.st.LastDeliveryError = msg
		rs.mu.Unlock()
		if d.Attempt >= e.cfg.MaxAttempts {
			e.cfg.Log.Warn().Str("rule", name).Str("delivery", d.ID).Int("attempts", d.Attempt).Str("error", msg).Msg("rule delivery dead-lettered")
			return e.settle(rs, en, &DeadLetter{Attempts: d.Attempt, LastError: msg, FailedAt: e.cfg.Now().UTC()})
		}
		wait := e.backoff(d.Attempt)
		e.cfg.Log.Debug().Str("rule", name).Str("delivery", d.ID).Int("attempt", d.Attempt).Dur("retry_in", wait).Str("error", msg).Msg("rule delivery failed")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// errFound stops a ForEach at its first key.
var errFound = errors.New("found")

// settle takes a delivered match out of the outbox, or moves it to the dead
// letters when dl is set, dropping the oldest dead letter past the bound.
func (e *Engine) settle(rs *ruleState, en entry, dl *DeadLetter) error {
	name := rs.c.Rule.Name
	ops := []Op{{Bucket: outboxBucket(name), Key: confKey(en.conf), Delete: true}}
	drop := false
	if dl != nil {
		m, err := DecodeMatch(en.body)
		if err != nil {
			return fmt.Errorf("rules: the outbox of %q: %w", name, err)
		}
		dl.Match = *m
		v := encodeJSON(dl)
		ops = append(ops, Op{Bucket: deadBucket(name), Key: confKey(en.conf), Value: v})
		rs.mu.Lock()
		drop = rs.dead >= e.cfg.MaxDeadLetters
		rs.mu.Unlock()
		if drop {
			err := e.cfg.Store.ForEach(deadBucket(name), func(k, _ []byte) error {
				ops = append(ops, Op{Bucket: deadBucket(name), Key: append([]byte(nil), k...), Delete: true})
				return errFound
			})
			if err != nil && !errors.Is(err, errFound) {
				return fmt.Errorf("rules: the dead letters of %q: %w", name, err)
			}
		}
	}
	if err := e.cfg.Store.Write(ops); err != nil {
		return fmt.Errorf("rules: settling %s: %w", deliveryID(name, en.conf), err)
	}
	rs.mu.Lock()
	rs.pending[0] = entry{}
	rs.pending = rs.pending[1:]
	rs.pendingBytes -= len(en.body)
	rs.full = false
	rs.settled++
	switch {
	case dl == nil:
		rs.st.Delivered++
	case drop:
		rs.st.DeadLettersDropped++
	default:
		rs.dead++
	}
	rs.mu.Unlock()
	e.notify() // the outbox has room
	if e.onSettle != nil {
		e.onSettle(name, dl != nil)
	}
	return nil
}
