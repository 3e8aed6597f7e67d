package rules

import (
	"fmt"
	"slices"
	"strings"
)

// A scan is one scanner step's work on a rule: what it found and will
// commit.
type scan struct {
	rs      *ruleState
	cursor  uint64  // the rule's cursor after the step
	full    bool    // the outbox filled up: the rule stops where it is
	settled uint64  // the rule's settled count when the step began
	added   []entry // matches for the outbox
	bytes   int     // of added
	matches uint64
	errs    uint64
	lastErr error
}

// step reads the next confirmed messages once for every rule that wants
// them, evaluates the rules, runs immediate actions, and commits the
// matches for outboxes with the new cursors in one Store.Write. It reports
// whether a cursor moved.
func (e *Engine) step() (bool, error) {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	scans := e.ready()
	if len(scans) == 0 {
		return false, nil
	}
	from := scans[0].cursor
	for _, s := range scans[1:] {
		from = min(from, s.cursor)
	}
	if from >= e.cfg.Source.ConfirmCount() {
		return false, nil
	}
	msgs, err := e.cfg.Source.ConfirmedSince(from, e.cfg.ScanBatch)
	if err != nil {
		return false, fmt.Errorf("rules: reading the confirmation order from %d: %w", from, err)
	}
	if len(msgs) == 0 {
		return false, nil
	}
	for i := range msgs {
		m := &msgs[i]
		if m.Confirmation < from || e.cfg.Skip != nil && e.cfg.Skip(m.Msg.Issuer) {
			continue
		}
		v := newVars(m, e.cfg.Lookup)
		for _, s := range scans {
			s.evaluate(v, e.cfg.OutboxBytes)
		}
	}
	// Rules the batch did not reach (a gap) move to its end.
	end := msgs[len(msgs)-1].Confirmation + 1
	var ops []Op
	moved := false
	for _, s := range scans {
		if !s.full && s.cursor < end {
			s.cursor = end
		}
		for _, en := range s.added {
			ops = append(ops, Op{Bucket: outboxBucket(s.rs.c.Rule.Name), Key: confKey(en.conf), Value: en.body})
		}
		moved = moved || s.cursor != s.rs.cursor
	}
	// Cursors that passed no match for an outbox are made durable at most
	// every CursorInterval: a crash repeats at most that much evaluation
	// (and log and event actions), never a webhook match.
	durable := len(ops) > 0 || e.cfg.Now().Sub(e.lastWrite) >= e.cfg.CursorInterval
	if durable {
		for _, s := range scans {
			if s.cursor != s.rs.durableCursor() {
				ops = append(ops, cursorOp(s.rs.c.Rule.Name, s.cursor))
			}
		}
	}
	if len(ops) > 0 {
		if err := e.cfg.Store.Write(ops); err != nil {
			return false, fmt.Errorf("rules: committing matches and cursors: %w", err)
		}
		e.lastWrite = e.cfg.Now()
	}
	for _, s := range scans {
		s.rs.commit(s, durable)
	}
	return moved, nil
}

func cursorOp(rule string, c uint64) Op {
	return Op{Bucket: bucketCursors, Key: []byte(rule), Value: encodeCursor(c)}
}

// flushCursors makes every rule's cursor durable, as Run returns.
func (e *Engine) flushCursors() error {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	e.mu.Lock()
	var ops []Op
	var rules []*ruleState
	for _, rs := range e.rules {
		rs.mu.Lock()
		if rs.cursor != rs.durable {
			ops = append(ops, cursorOp(rs.c.Rule.Name, rs.cursor))
			rules = append(rules, rs)
		}
		rs.mu.Unlock()
	}
	e.mu.Unlock()
	if len(ops) == 0 {
		return nil
	}
	if err := e.cfg.Store.Write(ops); err != nil {
		return fmt.Errorf("rules: saving cursors: %w", err)
	}
	for _, rs := range rules {
		rs.mu.Lock()
		rs.durable = rs.cursor
		rs.mu.Unlock()
	}
	return nil
}

// ready returns a scan for each rule with room in its outbox, by name.
func (e *Engine) ready() []*scan {
	e.mu.Lock()
	defer e.mu.Unlock()
	scans := make([]*scan, 0, len(e.rules))
	for _, rs := range e.rules {
		if ok, settled := rs.hasRoom(); ok {
			scans = append(scans, &scan{rs: rs, cursor: rs.cursor, settled: settled})
		}
	}
	slices.SortFunc(scans, func(a, b *scan) int { return strings.Compare(a.rs.c.Rule.Name, b.rs.c.Rule.Name) })
	return scans
}

// evaluate runs the rule on one message, if it wants it.
func (s *scan) evaluate(v *vars, outboxBytes int) {
	conf := v.m.Confirmation
	if s.full || conf < s.cursor {
		return
	}
	ok, err := s.rs.c.prog.match(v)
	if err != nil {
		s.errs++
		s.lastErr = err
		s.cursor = conf + 1
		return
	}
	if !ok {
		s.cursor = conf + 1
		return
	}
	m := newMatch(s.rs.c.Rule.Name, v.document())
	if s.rs.immediate != nil {
		s.rs.immediate(m)
		s.matches++
		s.cursor = conf + 1
		return
	}
	body := encodeJSON(m)
	if s.rs.wouldOverflow(s.bytes, len(body), outboxBytes) {
		s.full = true
		return
	}
	s.added = append(s.added, entry{conf: conf, body: body})
	s.bytes += len(body)
	s.matches++
	s.cursor = conf + 1
}
