package rules

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
)

// Source is the node's confirmation order, which an engine consumes.
type Source interface {
	// ConfirmCount returns the number of confirmations so far: the place
	// the next one takes.
	ConfirmCount() uint64
	// ConfirmedSince returns the confirmed messages from place seq on, in
	// order, at most limit of them.
	ConfirmedSince(seq uint64, limit int) ([]Message, error)
}

// NewDeliverer builds the Deliverer of a rule whose action is of a kind of
// Config.Kinds, or refuses the action.
type NewDeliverer func(Action) (Deliverer, error)

// Config configures an Engine. Zero fields take the defaults documented on
// each.
type Config struct {
	Source Source // required
	Store  Store  // required
	// Lookup says what the registry knows of an issuer (tags and device);
	// nil: nothing.
	Lookup Lookup
	Log    zerolog.Logger // the log action's lines, and delivery failures
	// OnEvent receives the matches of event rules, on the engine's
	// goroutine; it must not block. An engine without it refuses event
	// rules.
	OnEvent func(*Match)
	// Kinds adds action kinds to the three built in.
	Kinds map[string]NewDeliverer
	// Skip, if set, says which issuers' messages no rule evaluates (a
	// node's validators, whose messages carry no telemetry): the cursors
	// pass over them. It is called on the engine's goroutine and must not
	// block.
	Skip func(issuer dag.PublicKey) bool

	// MaxAttempts is how many failed attempts dead-letter a match; 10.
	MaxAttempts int
	// BackoffBase is the wait after a first failed attempt, doubled after
	// each further one up to BackoffMax; 1 s and 5 min. Each wait is drawn
	// uniformly from its upper half (jitter).
	BackoffBase, BackoffMax time.Duration
	// RequestTimeout bounds one delivery attempt; 10 s.
	RequestTimeout time.Duration
	// OutboxBytes bounds the matches a rule holds undelivered, in bytes of
	// their documents; 4 MiB. A rule whose outbox is full stops reading
	// the confirmation order (its cursor waits) until deliveries make room:
	// it falls behind, and nothing is lost.
	OutboxBytes int
	// MaxDeadLetters bounds a rule's dead letters; 1000. Past it, the
	// oldest is dropped (and counted).
	MaxDeadLetters int
	// ScanBatch is how many confirmed messages are read at once; 256.
	ScanBatch int
	// PollInterval is how often the source is polled when Notify is not
	// called; 1 s.
	PollInterval time.Duration
	// CursorInterval is how often a cursor that passed no match of a
	// webhook is written to the store; 1 s. (One that passed one is
	// written with the match, at once.) A crash repeats the evaluation
	// since, and the log and event actions it took.
	CursorInterval time.Duration

	// HTTPClient sends webhooks; nil: a client that follows no redirects.
	HTTPClient *http.Client
	// Now returns the time of webhook timestamps and dead letters; nil:
	// time.Now.
	Now func() time.Time
	// Rand draws the jitter of backoffs; nil: the global source. It is
	// used under a lock.
	Rand *rand.Rand
}

func (c *Config) fill() error {
	if c.Source == nil || c.Store == nil {
		return errors.New("rules: an engine needs a Source and a Store")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxAttempts, 10)
	def(&c.OutboxBytes, 4<<20)
	def(&c.MaxDeadLetters, 1000)
	def(&c.ScanBatch, 256)
	defDur(&c.BackoffBase, time.Second)
	defDur(&c.BackoffMax, 5*time.Minute)
	defDur(&c.RequestTimeout, 10*time.Second)
	defDur(&c.PollInterval, time.Second)
	defDur(&c.CursorInterval, time.Second)
	if c.BackoffMax < c.BackoffBase {
		c.BackoffMax = c.BackoffBase
	}
	if c.HTTPClient == nil {
		c.HTTPClient = newHTTPClient(c.RequestTimeout)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Engine runs rules over the node's confirmation order. Every rule has a
// durable cursor, the next confirmation it evaluates; a match of a rule
// whose action is delivered (a webhook) goes into the rule's durable outbox
// in the same Store.Write that moves the cursor past it, and leaves it when
// delivered or dead-lettered. So a crash neither loses a match nor delivers
// one out of order: at-least-once, in confirmation order per rule.
//
// One scanner reads the confirmation order once for all the rules; a rule
// whose outbox is full is left out until it has room, then catches up. Its
// methods are safe for concurrent use.
type Engine struct {
	cfg  Config
	wake chan struct{} // capacity 1: the scanner has something to do

	// stepMu serializes the scanner's steps with Add and Remove, so that a
	// step never writes for a rule being removed.
	stepMu sync.Mutex

	mu    sync.Mutex
	rules map[string]*ruleState
	run   *runState // nil when Run is not running

	randMu sync.Mutex

	lastWrite time.Time // of the scanner, under stepMu

	// onSettle, when set (by tests, before Run), is called after a match
	// leaves an outbox.
	onSettle func(rule string, dead bool)
}

// runState is what Run shares with the goroutines it starts.
type runState struct {
	ctx  context.Context
	errc chan error // capacity 1: the first failure
	wg   sync.WaitGroup
}

// New returns an engine of rules. Each rule resumes from its cursor in the
// store; a rule new to the store starts at the end of the confirmation
// order (it acts on what is confirmed from now on).
func New(cfg Config, rules []Rule) (*Engine, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, wake: make(chan struct{}, 1), rules: make(map[string]*ruleState)}
	for _, r := range rules {
		if err := e.add(r); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Add compiles a rule and adds it, starting at its cursor in the store, or
// at the end of the confirmation order when it has none.
func (e *Engine) Add(r Rule) error {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	return e.add(r)
}

// ErrNoRule is returned for a rule name the engine does not have.
var ErrNoRule = errors.New("rules: no such rule")

// Remove stops a rule and deletes its cursor, outbox and dead letters.
func (e *Engine) Remove(name string) error {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	e.mu.Lock()
	rs := e.rules[name]
	delete(e.rules, name)
	e.mu.Unlock()
	if rs == nil {
		return fmt.Errorf("%w: %q", ErrNoRule, name)
	}
	rs.stop()
	return e.dropState([]string{name})
}

// DropStale deletes from the store the cursors, outboxes and dead letters
// of rules the engine does not have (rules removed while it was not
// running), so that a rule added later under one of their names starts
// afresh, and returns their names.
func (e *Engine) DropStale() ([]string, error) {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	var stale []string
	err := e.cfg.Store.ForEach(bucketCursors, func(k, _ []byte) error {
		e.mu.Lock()
		_, ok := e.rules[string(k)]
		e.mu.Unlock()
		if !ok {
			stale = append(stale, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rules: reading the cursors: %w", err)
	}
	if len(stale) == 0 {
		return nil, nil
	}
	return stale, e.dropState(stale)
}

// dropState deletes the cursors, outboxes and dead letters of the rules
// named, in one Write.
func (e *Engine) dropState(names []string) error {
	var ops []Op
	for _, name := range names {
		ops = append(ops, Op{Bucket: bucketCursors, Key: []byte(name), Delete: true})
		for _, b := range [][]byte{outboxBucket(name), deadBucket(name)} {
			err := e.cfg.Store.ForEach(b, func(k, _ []byte) error {
				ops = append(ops, Op{Bucket: b, Key: append([]byte(nil), k...), Delete: true})
				return nil
			})
			if err != nil {
				return fmt.Errorf("rules: removing %q: %w", name, err)
			}
		}
	}
	if err := e.cfg.Store.Write(ops); err != nil {
		return fmt.Errorf("rules: removing %s: %w", strings.Join(names, ", "), err)
	}
	return nil
}

// Replace swaps the definition of the rule named r.Name for r, keeping
// its cursor, outbox and dead letters: it goes on from where the rule was,
// and the matches waiting in the outbox go out by r's action. A rule whose
// outbox holds matches keeps an action that delivers them (a webhook, or a
// kind of Config.Kinds).
func (e *Engine) Replace(r Rule) error {
	rs, err := e.newRuleState(r)
	if err != nil {
		return err
	}
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	e.mu.Lock()
	old := e.rules[r.Name]
	e.mu.Unlock()
	if old == nil {
		return fmt.Errorf("%w: %q", ErrNoRule, r.Name)
	}
	old.mu.Lock()
	pending, cursor, st := len(old.pending), old.cursor, old.st
	old.mu.Unlock()
	if pending > 0 && rs.deliverer == nil {
		return fmt.Errorf("%w: rule %q: %d matches wait in its outbox for delivery; a %s action would not deliver them (remove the rule to drop them)",
			ErrInvalid, r.Name, pending, r.Action.Kind)
	}
	old.stop()
	// The scanner is held: the old rule's cursor is where the new one
	// resumes.
	if err := e.cfg.Store.Write([]Op{cursorOp(r.Name, cursor)}); err != nil {
		e.install(old) // the old rule goes on
		return fmt.Errorf("rules: replacing %q: %w", r.Name, err)
	}
	if err := e.load(rs); err != nil {
		e.install(old) // the old rule goes on
		return err
	}
	rs.st = st
	e.install(rs)
	return nil
}

// newRuleState compiles r and binds its action, outside the store.
func (e *Engine) newRuleState(r Rule) (*ruleState, error) {
	c, err := Compile(r)
	if err != nil {
		return nil, err
	}
	rs := &ruleState{c: c, wake: make(chan struct{}, 1)}
	if err := e.bindAction(rs); err != nil {
		return nil, err
	}
	return rs, nil
}

// install puts rs in the engine, in place of a rule of its name, and
// starts its delivery if the engine runs.
func (e *Engine) install(rs *ruleState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules[rs.c.Rule.Name] = rs
	if e.run != nil {
		e.startDelivery(rs)
	}
	e.notify()
}

// add builds a rule's state from its definition and the store. The caller
// holds stepMu, or is New.
func (e *Engine) add(r Rule) error {
	rs, err := e.newRuleState(r)
	if err != nil {
		return err
	}
	e.mu.Lock()
	_, dup := e.rules[r.Name]
	e.mu.Unlock()
	if dup {
		return fmt.Errorf("%w: a second rule named %q", ErrInvalid, r.Name)
	}
	if err := e.load(rs); err != nil {
		return err
	}
	e.install(rs)
	return nil
}

// bindAction gives a rule what carries its matches out.
func (e *Engine) bindAction(rs *ruleState) error {
	a := rs.c.Rule.Action
	switch a.Kind {
	case KindLog:
		rs.immediate = e.logMatch
	case KindEvent:
		if e.cfg.OnEvent == nil {
			return fmt.Errorf("%w: rule %q: this engine publishes no events", ErrInvalid, rs.c.Rule.Name)
		}
		rs.immediate = e.cfg.OnEvent
	case KindWebhook:
		rs.deliverer = &webhook{url: a.URL, secret: []byte(a.Secret), client: e.cfg.HTTPClient, now: e.cfg.Now}
	default:
		nd := e.cfg.Kinds[a.Kind]
		if nd == nil {
			return fmt.Errorf("%w: rule %q: unknown action kind %.40q", ErrInvalid, rs.c.Rule.Name, a.Kind)
		}
		d, err := nd(a)
		if err != nil {
			return fmt.Errorf("%w: rule %q: %w", ErrInvalid, rs.c.Rule.Name, err)
		}
		rs.deliverer = d
	}
	return nil
}

// load reads a rule's cursor, outbox and dead-letter count from the store,
// and gives a rule new to the store its cursor.
func (e *Engine) load(rs *ruleState) error {
	name := rs.c.Rule.Name
	v, err := e.cfg.Store.Get(bucketCursors, []byte(name))
	if err != nil {
		return fmt.Errorf("rules: loading %q: %w", name, err)
	}
	if v == nil {
		rs.cursor = e.cfg.Source.ConfirmCount()
		if err := e.cfg.Store.Write([]Op{cursorOp(name, rs.cursor)}); err != nil {
			return fmt.Errorf("rules: adding %q: %w", name, err)
		}
	} else if rs.cursor, err = decodeCursor(v); err != nil {
		return fmt.Errorf("rules: loading %q: %w", name, err)
	}
	rs.durable = rs.cursor
	err = e.cfg.Store.ForEach(outboxBucket(name), func(k, v []byte) error {
		conf, err := decodeConf(k)
		if err != nil {
			return err
		}
		if _, err := DecodeMatch(v); err != nil {
			return err
		}
		rs.pending = append(rs.pending, entry{conf: conf, body: append([]byte(nil), v...)})
		rs.pendingBytes += len(v)
		return nil
	})
	if err != nil {
		return fmt.Errorf("rules: loading the outbox of %q: %w", name, err)
	}
	err = e.cfg.Store.ForEach(deadBucket(name), func([]byte, []byte) error { rs.dead++; return nil })
	if err != nil {
		return fmt.Errorf("rules: loading the dead letters of %q: %w", name, err)
	}
	return nil
}

// Notify tells the engine that the confirmation order has grown. It never
// blocks; without it the engine polls every Config.PollInterval.
func (e *Engine) Notify() { e.notify() }

func (e *Engine) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// ErrRunning is returned by a second concurrent Run.
var ErrRunning = errors.New("rules: the engine is running")

// Run evaluates the rules on every confirmation and delivers their matches,
// until ctx is done or the store fails. It returns ctx's error, or the
// failure. The engine may be run again after Run returns.
func (e *Engine) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rn := &runState{ctx: ctx, errc: make(chan error, 1)}
	e.mu.Lock()
	if e.run != nil {
		e.mu.Unlock()
		return ErrRunning
	}
	e.run = rn
	for _, rs := range e.rules {
		e.startDelivery(rs)
	}
	e.mu.Unlock()

	err := e.scan(ctx, rn.errc)
	cancel()
	rn.wg.Wait()
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		if ferr := e.flushCursors(); ferr != nil {
			err = ferr
		}
	}
	e.mu.Lock()
	e.run = nil
	e.mu.Unlock()
	return err
}

// scan runs scanner steps until ctx is done or something fails.
func (e *Engine) scan(ctx context.Context, errc <-chan error) error {
	poll := time.NewTicker(e.cfg.PollInterval)
	defer poll.Stop()
	for {
		progressed, err := e.step()
		if err != nil {
			return err
		}
		if progressed {
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
				return ctx.Err()
			default:
			}
			continue
		}
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-e.wake:
		case <-poll.C:
		}
	}
}

// fail reports a delivery goroutine's failure to Run.
func (rn *runState) fail(err error) {
	select {
	case rn.errc <- err:
	default:
	}
}

// backoff returns the wait after the attempt-th failed attempt.
func (e *Engine) backoff(attempt int) time.Duration {
	d := e.cfg.BackoffMax
	if attempt-1 < 40 {
		d = min(e.cfg.BackoffBase<<(attempt-1), e.cfg.BackoffMax)
	}
	half := d / 2
	e.randMu.Lock()
	defer e.randMu.Unlock()
	if e.cfg.Rand != nil {
		return half + time.Duration(e.cfg.Rand.Int64N(int64(d-half+1)))
	}
	return half + rand.N(d-half+1)
}

func (e *Engine) logMatch(m *Match) {
	ev := e.cfg.Log.Info().Str("rule", m.Rule).Str("delivery", m.Delivery).
		Str("id", m.Message.ID).Str("issuer", m.Message.Issuer).Str("device", m.Message.Device).
		Strs("tags", m.Message.Tags).Uint64("seq", m.Message.Seq).
		Uint64("confirmation", m.Message.Confirmation).Time("timestamp", m.Message.Timestamp).
		Str("payload_encoding", m.Message.PayloadEncoding)
	ev.RawJSON("payload", m.Message.Payload).Msg("rule matched")
}

// RuleStats is what an engine reports of a rule.
type RuleStats struct {
	Name   string
	Kind   string
	Cursor uint64 // the next confirmation the rule evaluates
	// Matches and EvalErrors count, since the engine started, the
	// messages the condition held on and those it failed on (skipped).
	Matches, EvalErrors uint64
	LastEvalError       string
	Pending             int // matches in the outbox
	PendingBytes        int
	// Delivered and FailedAttempts count deliveries since the engine
	// started.
	Delivered, FailedAttempts uint64
	LastDeliveryError         string
	DeadLetters               int    // in the store
	DeadLettersDropped        uint64 // past Config.MaxDeadLetters, since the engine started
}

// Stats returns the stats of every rule, by name.
func (e *Engine) Stats() []RuleStats {
	e.mu.Lock()
	rules := make([]*ruleState, 0, len(e.rules))
	for _, rs := range e.rules {
		rules = append(rules, rs)
	}
	e.mu.Unlock()
	out := make([]RuleStats, len(rules))
	for i, rs := range rules {
		out[i] = rs.stats()
	}
	slices.SortFunc(out, func(a, b RuleStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// DeadLetters returns a rule's dead letters, oldest match first.
func (e *Engine) DeadLetters(rule string) ([]DeadLetter, error) {
	e.mu.Lock()
	_, ok := e.rules[rule]
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoRule, rule)
	}
	var out []DeadLetter
	err := e.cfg.Store.ForEach(deadBucket(rule), func(_, v []byte) error {
		d, err := decodeDeadLetter(v)
		if err != nil {
			return err
		}
		out = append(out, *d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rules: reading the dead letters of %q: %w", rule, err)
	}
	return out, nil
}
