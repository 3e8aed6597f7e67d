package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/rules"
	"github.com/weftnet/weft/storage"
)

// Rules on confirmed telemetry (package rules; docs/RULES.md). The node
// runs one engine over its confirmation order, with the rules of its
// configuration (Config.Rules) and those added through the API (PutRule),
// which it keeps in the store's state (bucket "rules") so that they
// survive a restart. The engine keeps its cursors, outboxes and dead
// letters in the same store, in state buckets of its own, each write one
// transaction: a match and the cursor past it commit together. Rules are
// local: another node runs rules of its own.

// Where a rule was defined.
const (
	RuleFromConfig = "config" // Config.Rules: changed in the configuration only
	RuleFromAPI    = "api"    // PutRule: kept in the store
)

// DefaultMaxRules is Config.MaxRules's default. With each rule's outbox at
// rules.Config.OutboxBytes (4 MiB), 64 rules whose receivers are all down
// hold at most 256 MiB.
const DefaultMaxRules = 64

// MaxRuleTest bounds the messages TestRule replays.
const MaxRuleTest = 100_000

// Errors of the rules' API.
var (
	// ErrRuleInConfig: the rule is defined in the node's configuration,
	// and changes only there.
	ErrRuleInConfig = errors.New("node: the rule is defined in the node's configuration")
	// ErrRuleExists: AddRule of a name that has a rule.
	ErrRuleExists = errors.New("node: a rule of that name exists")
	// ErrTooManyRules: the node has Config.MaxRules rules.
	ErrTooManyRules = errors.New("node: too many rules")
)

// stateRules holds the rules added through the API: name -> the JSON of
// a storedRule.
const stateRules = "rules"

// storedRule is a rule added through the API, as the store keeps it.
type storedRule struct {
	Rule    rules.Rule `json:"rule"`
	Who     string     `json:"who"`
	Updated time.Time  `json:"updated"`
}

// RuleInfo is a rule of the node, with where it was defined and what the
// engine reports of it.
type RuleInfo struct {
	Rule    rules.Rule
	Source  string    // RuleFromConfig or RuleFromAPI
	Who     string    // the token that last set it (RuleFromAPI)
	Updated time.Time // when it was last set (RuleFromAPI)
	Stats   rules.RuleStats
}

// ruleSet is the node's rules: the engine and the definitions it runs.
type ruleSet struct {
	eng *rules.Engine
	mu  sync.Mutex // serializes changes; guards defs
	// defs are the rules by name. Their order of change is that of the
	// store: a change is committed first, then made in the engine.
	defs map[string]*RuleInfo
	max  int
}

// openRules builds the engine with the configuration's rules and those
// the store keeps, and deletes what the store holds of rules that are
// neither (a rule removed from the configuration).
func (n *Node) openRules() error {
	rs := &ruleSet{defs: make(map[string]*RuleInfo), max: n.cfg.MaxRules}
	for _, r := range n.cfg.Rules {
		if rs.defs[r.Name] != nil {
			return fmt.Errorf("%w: two rules named %q in the configuration", ErrConfig, r.Name)
		}
		rs.defs[r.Name] = &RuleInfo{Rule: r, Source: RuleFromConfig}
	}
	err := n.store.StateView(func(tx *storage.StateTx) error {
		return tx.ForEach(stateRules, nil, false, func(k, v []byte) (bool, error) {
			var sr storedRule
			if err := json.Unmarshal(v, &sr); err != nil || sr.Rule.Name != string(k) {
				return false, fmt.Errorf("%w: the stored rule %q", storage.ErrCorrupt, k)
			}
			if d := rs.defs[sr.Rule.Name]; d != nil {
				n.log.Warn().Str("rule", sr.Rule.Name).Msg("rules: the configuration defines a rule the API added: the configuration's is used")
				return true, nil
			}
			rs.defs[sr.Rule.Name] = &RuleInfo{Rule: sr.Rule, Source: RuleFromAPI, Who: sr.Who, Updated: sr.Updated}
			return true, nil
		})
	})
	if err != nil {
		return fmt.Errorf("node: reading the rules: %w", err)
	}
	if len(rs.defs) > rs.max {
		return fmt.Errorf("%w: %d rules, more than max-rules (%d)", ErrConfig, len(rs.defs), rs.max)
	}
	cfg := n.cfg.RuleEngine
	cfg.Source = ruleSource{n}
	cfg.Store = ruleStore{n.store}
	cfg.Lookup = n.ruleLookup
	cfg.Skip = n.notTelemetry
	cfg.OnEvent = n.publishMatch
	cfg.Log = n.log.With().Str("part", "rules").Logger()
	if cfg.Now == nil {
		cfg.Now = n.now
	}
	defs := make([]rules.Rule, 0, len(rs.defs))
	for _, d := range rs.defs {
		defs = append(defs, d.Rule)
	}
	slices.SortFunc(defs, func(a, b rules.Rule) int { return strings.Compare(a.Name, b.Name) })
	if rs.eng, err = rules.New(cfg, defs); err != nil {
		if errors.Is(err, rules.ErrInvalid) {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return fmt.Errorf("node: starting the rules: %w", err)
	}
	stale, err := rs.eng.DropStale()
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if len(stale) > 0 {
		n.log.Info().Strs("rules", stale).Msg("rules: deleted the cursors, outboxes and dead letters of rules no longer defined")
	}
	n.rules = rs
	n.m.registerRules(rs.eng)
	if len(defs) > 0 {
		names := make([]string, len(defs))
		for i, r := range defs {
			names[i] = r.Name
		}
		n.log.Info().Strs("rules", names).Msg("rules loaded")
	}
	return nil
}

// runRules runs the engine until ctx ends. A failure of the store (a full
// disk) stops the engine; it is started again after a wait, from its
// durable cursors, so that nothing is lost.
func (n *Node) runRules(ctx context.Context) {
	wait := time.Second
	for {
		err := n.rules.eng.Run(ctx)
		if ctx.Err() != nil {
			if err != nil && !errors.Is(err, ctx.Err()) {
				n.log.Error().Err(err).Msg("rules: stopping")
			}
			return
		}
		n.log.Error().Err(err).Dur("retry_in", wait).Msg("rules: the engine stopped; starting it again from its durable cursors")
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// ruleSource is the node's confirmation order, as the engine reads it.
type ruleSource struct{ n *Node }

func (s ruleSource) ConfirmCount() uint64 { return s.n.store.ConfirmCount() }

func (s ruleSource) ConfirmedSince(seq uint64, limit int) ([]rules.Message, error) {
	cs, err := s.n.ConfirmedSince(seq, limit)
	if err != nil {
		return nil, err
	}
	out := make([]rules.Message, len(cs))
	for i, c := range cs {
		out[i] = ruleMessage(c.MessageInfo, c.Seq)
	}
	return out, nil
}

func ruleMessage(mi *MessageInfo, confirmation uint64) rules.Message {
	return rules.Message{Confirmation: confirmation, Position: mi.Pos, ConfirmedAt: time.Unix(0, mi.ConfirmedAt).UTC(), Msg: mi.Msg}
}

// ruleStore is the engine's store: the node's state buckets.
type ruleStore struct{ s *storage.Store }

func (r ruleStore) Get(bucket, key []byte) ([]byte, error) {
	var v []byte
	err := r.s.StateView(func(tx *storage.StateTx) error {
		var err error
		v, err = tx.Get(string(bucket), key)
		return err
	})
	return v, err
}

func (r ruleStore) ForEach(bucket []byte, fn func(key, value []byte) error) error {
	return r.s.StateView(func(tx *storage.StateTx) error {
		return tx.ForEach(string(bucket), nil, false, func(k, v []byte) (bool, error) {
			return true, fn(k, v)
		})
	})
}

func (r ruleStore) Write(ops []rules.Op) error {
	return r.s.StateUpdate(func(tx *storage.StateTx) error {
		for _, op := range ops {
			var err error
			if op.Delete {
				err = tx.Delete(string(op.Bucket), op.Key)
			} else {
				err = tx.Put(string(op.Bucket), op.Key, op.Value)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// notTelemetry reports whether k issues no telemetry: one of the
// network's validators, or the genesis message's zero key. Rules pass over
// their messages.
func (n *Node) notTelemetry(k dag.PublicKey) bool { return n.vals[k] || k == dag.PublicKey{} }

// ruleLookup is what the registry knows of an issuer, for conditions.
func (n *Node) ruleLookup(k dag.PublicKey) rules.Device {
	d, ok := n.reg.get(k)
	if !ok {
		return rules.Device{}
	}
	return rules.Device{Name: d.Name, Tags: d.Tags}
}

// publishMatch publishes an event rule's match on the event feed.
func (n *Node) publishMatch(m *rules.Match) {
	if n.hub.subscribers() == 0 {
		return
	}
	e := Event{Kind: EventRule, Rule: m.Rule, Seq: m.Message.Seq, Timestamp: m.Message.Timestamp.UnixNano(),
		Pos: m.Message.Position, ConfirmSeq: m.Message.Confirmation, ConfirmedAt: m.Message.ConfirmedAt.UnixNano()}
	hex.Decode(e.ID[:], []byte(m.Message.ID))
	hex.Decode(e.Issuer[:], []byte(m.Message.Issuer))
	n.hub.publish([]Event{e})
}

// Rules returns the node's rules, by name, with the engine's figures.
func (n *Node) Rules() []RuleInfo {
	rs := n.rules
	rs.mu.Lock()
	out := make([]RuleInfo, 0, len(rs.defs))
	for _, d := range rs.defs {
		out = append(out, *d)
	}
	rs.mu.Unlock()
	stats := rs.eng.Stats()
	slices.SortFunc(out, func(a, b RuleInfo) int { return strings.Compare(a.Rule.Name, b.Rule.Name) })
	for i := range out {
		if j, ok := slices.BinarySearchFunc(stats, out[i].Rule.Name, func(s rules.RuleStats, name string) int {
			return strings.Compare(s.Name, name)
		}); ok {
			out[i].Stats = stats[j]
		}
	}
	return out
}

// Rule returns the rule named name; an unknown name is an error wrapping
// rules.ErrNoRule.
func (n *Node) Rule(name string) (RuleInfo, error) {
	for _, ri := range n.Rules() {
		if ri.Rule.Name == name {
			return ri, nil
		}
	}
	return RuleInfo{}, fmt.Errorf("%w: %q", rules.ErrNoRule, name)
}

// PutRule adds r, or replaces the rule of its name if replace is set
// (otherwise that is ErrRuleExists), made by who. A replaced rule goes on
// from its cursor with its outbox (rules.Engine.Replace); a new one acts
// on what is confirmed from now on. The rule is kept in the store and
// survives a restart. It refuses a rule that does not compile
// (rules.ErrInvalid, with the compiler's message), a rule of the
// configuration (ErrRuleInConfig), and a rule past Config.MaxRules
// (ErrTooManyRules). It returns whether the rule is new.
func (n *Node) PutRule(r rules.Rule, who string, replace bool) (created bool, err error) {
	if _, err := rules.Compile(r); err != nil {
		return false, err
	}
	rs := n.rules
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old := rs.defs[r.Name]
	switch {
	case old != nil && old.Source == RuleFromConfig:
		return false, fmt.Errorf("%w: %q", ErrRuleInConfig, r.Name)
	case old != nil && !replace:
		return false, fmt.Errorf("%w: %q (replace it with PUT)", ErrRuleExists, r.Name)
	case old == nil && len(rs.defs) >= rs.max:
		return false, fmt.Errorf("%w: this node has %d, the most it takes (max-rules)", ErrTooManyRules, rs.max)
	}
	d := &RuleInfo{Rule: r, Source: RuleFromAPI, Who: who, Updated: n.now().UTC()}
	if old != nil {
		// The engine checks first that the replacement strands no match;
		// the store is written once it took it.
		if err := rs.eng.Replace(r); err != nil {
			return false, registryErr(err)
		}
	}
	if err := n.storeRule(d); err != nil {
		if old != nil {
			rs.eng.Replace(old.Rule) // back to what the store holds
		}
		return false, err
	}
	if old == nil {
		if err := rs.eng.Add(r); err != nil {
			n.store.StateUpdate(func(tx *storage.StateTx) error { return tx.Delete(stateRules, []byte(r.Name)) })
			return false, registryErr(err)
		}
	}
	rs.defs[r.Name] = d
	return old == nil, nil
}

func (n *Node) storeRule(d *RuleInfo) error {
	b, err := json.Marshal(storedRule{Rule: d.Rule, Who: d.Who, Updated: d.Updated})
	if err != nil {
		return err
	}
	return registryErr(n.store.StateUpdate(func(tx *storage.StateTx) error {
		return tx.Put(stateRules, []byte(d.Rule.Name), b)
	}))
}

// RemoveRule removes a rule added through the API, with its cursor,
// outbox and dead letters: matches not yet delivered are dropped.
func (n *Node) RemoveRule(name string) error {
	rs := n.rules
	rs.mu.Lock()
	defer rs.mu.Unlock()
	d := rs.defs[name]
	switch {
	case d == nil:
		return fmt.Errorf("%w: %q", rules.ErrNoRule, name)
	case d.Source == RuleFromConfig:
		return fmt.Errorf("%w: %q", ErrRuleInConfig, name)
	}
	err := n.store.StateUpdate(func(tx *storage.StateTx) error { return tx.Delete(stateRules, []byte(name)) })
	if err != nil {
		return registryErr(err)
	}
	delete(rs.defs, name)
	if err := rs.eng.Remove(name); err != nil {
		// The definition is gone: what is left of its state is deleted at
		// the next start (dropStaleRules).
		return registryErr(err)
	}
	return nil
}

// RuleDeadLetters returns a rule's dead letters, oldest first.
func (n *Node) RuleDeadLetters(name string) ([]rules.DeadLetter, error) {
	dls, err := n.rules.eng.DeadLetters(name)
	return dls, registryErr(err)
}

// Bounds of what TestRule returns, whatever the range: the match
// documents, in bytes (about: the payloads and 600 bytes each), and the
// messages the condition failed on.
const (
	MaxRuleTestBytes  = 8 << 20
	MaxRuleTestErrors = 1000
)

// TestRule evaluates ruleTestBatch messages at a time, or fewer whose
// payloads reach ruleTestBatchBytes.
const (
	ruleTestBatch      = 256
	ruleTestBatchBytes = 1 << 20
)

// TestRule replays the confirmed messages of tr (by their timestamp),
// the validators' and the genesis left out, through r, at most limit of them (at most
// MaxRuleTest), and returns what r would have fired, acting on none. It
// holds a batch of messages at a time, and stops early once the matches
// reach MaxRuleTestBytes; it keeps the first MaxRuleTestErrors errors. The
// messages' places in the confirmation order are not looked up:
// `confirmation` reads 0 in a test. It returns whether messages of tr were
// left out.
func (n *Node) TestRule(ctx context.Context, r rules.Rule, tr TimeRange, limit int) (*rules.TestResult, bool, error) {
	if _, err := rules.Compile(r); err != nil {
		return nil, false, err
	}
	limit = min(max(limit, 1), MaxRuleTest)
	tr.Confirmed = true
	res := &rules.TestResult{Matches: []rules.Match{}, Errors: []rules.EvalError{}}
	batch := make([]rules.Message, 0, ruleTestBatch)
	size, held := 0, 0 // bytes of the matches, and of the batch's payloads
	flush := func() error {
		part, err := rules.Test(r, batch, n.ruleLookup)
		if err != nil {
			return err
		}
		res.Evaluated += part.Evaluated
		for _, m := range part.Matches {
			size += len(m.Message.Payload) + 600
		}
		res.Matches = append(res.Matches, part.Matches...)
		res.Errors = append(res.Errors, part.Errors[:min(len(part.Errors), MaxRuleTestErrors-len(res.Errors))]...)
		batch = batch[:0]
		return nil
	}
	errFull := errors.New("full")
	err := n.EachTimeMessage(ctx, tr, func(mi *MessageInfo) error {
		if n.notTelemetry(mi.Msg.Issuer) {
			return nil
		}
		if res.Evaluated+len(batch) == limit || size >= MaxRuleTestBytes {
			return errFull
		}
		batch = append(batch, ruleMessage(mi, 0))
		held += len(mi.Msg.Payload)
		if len(batch) == ruleTestBatch || held >= ruleTestBatchBytes {
			held = 0
			return flush()
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return nil, false, err
	}
	if ferr := flush(); ferr != nil {
		return nil, false, ferr
	}
	return res, err != nil, nil
}
