package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// Defaults of a Fleet's zero fields.
const (
	DefaultFleetGateways = 4
	DefaultFleetBatch    = 256
	DefaultBaseDelay     = 100 * time.Millisecond
	DefaultMaxDelay      = 2 * time.Second
	DefaultPendingFor    = 10 * time.Second
)

// Fleet is a site's gateways in front of one node, doing what a real
// gateway does rather than replaying pre-built messages: each gateway owns
// a share of the devices, asks the node for fresh tips before every batch,
// builds, signs and solves the devices' messages on them, submits them in
// one batch request, and sends again what the node did not take.
//
// # What a gateway does with each answer
//
// It follows docs/API.md ("What a device does with each answer"):
//
//   - 201, or 409 duplicate: acknowledged (durable). The device is free for
//     its next message.
//   - 429, 503, 500, or no answer at all (a transport error, the node
//     down): the same bytes again, after a wait drawn uniformly from 0 up
//     to BaseDelay, 2 x BaseDelay, 4 x BaseDelay... capped at MaxDelay
//     (exponential backoff with full jitter), and not sooner than the
//     node's Retry-After. The same bytes are the same message: a message
//     whose answer was lost is answered duplicate the next time.
//   - 202 pending: the same bytes again, with backoff, for PendingFor;
//     then, and at once for 422 unknown_parents, invalid_parent and 409
//     stale_sequence, a new message on fresh tips.
//   - any other code: the message is wrong; it is given up (Stats.Failed).
//
// # Parents
//
// Each new message approves one of the two tips the node offered for its
// batch and, as its second parent, the message built before it in the
// batch; the batch's first new message approves the gateway's last
// acknowledged one. A batch's new messages are thus one chain hung on
// the node's tips: a validator that approves its end approves all of it,
// where messages that shared two tips and nothing else would pile up as
// tips and wait long for confirmation.
//
// A message whose parent the node refused in the same batch is held for
// it, and the node answers the batch only when its submit timeout (5 s
// by default) ends: so after a batch in which the node refused anything,
// a gateway builds its next batch unchained, every new message approving
// a tip and the last acknowledged message, both durable, until a batch
// is taken whole again. A message held pending waits for its parent to be
// sent again, or is built anew after PendingFor.
//
// A gateway has one request in flight. After a request that got no answer
// it sends nothing until its own backoff passes, so that a node that is
// down is not hammered and one that comes back is not flooded at once.
//
// # Sequence numbers
//
// Every device has at most one message outstanding, so its messages reach
// the node in sequence order. Its sequence numbers start at the wall
// clock in unix nanoseconds, as client.Device's do, and a new message
// always takes the next one: a number is never used for two different
// messages, whatever the node answered (no equivocation), and a message
// sent again keeps its number because it keeps its bytes.
//
// Set the exported fields before Run, and do not change them after. A
// Fleet runs once and must not be copied after its first use.
type Fleet struct {
	// Node is the API URL of the node ("http://host:port"). Required.
	Node string
	// Gateways is the number of gateways, each one goroutine with one
	// request in flight. Default DefaultFleetGateways.
	Gateways int
	// Devices is the number of devices, each with its own key (derived
	// from Seed as the other scenarios do), spread over the gateways.
	// Default DefaultDevices; at least Gateways.
	Devices int
	// Batch is the most messages a gateway sends in one request. Default
	// DefaultFleetBatch; at most client.MaxBatchMessages.
	Batch int
	// Rate is the messages a second the devices produce in all; 0 (the
	// default): as fast as the node takes them, every free device at once.
	// At a rate, a reading that is due while every device of its gateway
	// waits for an earlier message is skipped (Stats.Skipped): a gateway
	// never holds more readings than its devices.
	Rate float64
	// Linger is how long a gateway at a rate waits, once a message is due,
	// for more to fill its batch. Default DefaultLinger.
	Linger time.Duration
	// Payload is the payload size in bytes. Default DefaultPayload.
	Payload int
	// JSONPayload makes each payload a JSON reading (Reading) of the
	// device's reading count times Devices plus its index, padded to
	// Payload bytes, which must then be at least MinJSONPayload.
	JSONPayload bool
	// Seed derives the devices' keys and the jitter. Default DefaultSeed.
	Seed uint64
	// BaseDelay and MaxDelay bound the backoff (see above). Defaults
	// DefaultBaseDelay and DefaultMaxDelay.
	BaseDelay, MaxDelay time.Duration
	// PendingFor is how long a message answered 202 is sent again before
	// it is given up for a new one. Default DefaultPendingFor.
	PendingFor time.Duration
	// HTTPClient carries the requests. Default: a client of its own, with
	// a 30 s timeout per request (a batch is answered once durable).
	HTTPClient *http.Client
	// OnAck, if set, is called for every acknowledged message, from the
	// gateway's goroutine (the gateways call it concurrently): keep what
	// you need quickly. AckLog keeps them all.
	OnAck func(Ack)

	// obs, if set, is told of every message's first send, acknowledgement
	// and abandonment: the Gateway scenario's measurement.
	obs *fleetObserver
	st  fleetCounters
}

// Ack is an acknowledged message: the node answered 201 (durable) or
// duplicate (it has it).
type Ack struct {
	Device int
	Issuer dag.PublicKey
	Seq    uint64
	ID     dag.ID
	At     time.Time // when the answer came
	// Timestamp is the message's own (unix ns), 0 if not known.
	Timestamp int64
}

// FleetStats counts what a Fleet's gateways did.
type FleetStats struct {
	// Built counts messages built, signed and solved; Acked those
	// acknowledged.
	Built uint64 `json:"built"`
	Acked uint64 `json:"acked"`
	// Resends counts messages sent again as the same bytes; Rebuilds,
	// messages given up for a new one on fresh tips.
	Resends  uint64 `json:"resends"`
	Rebuilds uint64 `json:"rebuilds"`
	// Requests counts batch requests; Unanswered, those (and tips
	// requests) that got no answer from the node: a transport error, or an
	// answer that broke the API.
	Requests   uint64 `json:"requests"`
	Unanswered uint64 `json:"unanswered"`
	// Skipped counts readings not taken at a rate (see Fleet.Rate).
	Skipped uint64 `json:"skipped,omitempty"`
	// Answers counts the node's answers other than 201, per message, by
	// code ("pending" for 202), whatever the gateway did next.
	Answers map[string]uint64 `json:"answers"`
	// Failed counts the messages given up with a final code: the node
	// refused a message the gateway built, which is a bug on one side.
	Failed map[string]uint64 `json:"failed,omitempty"`
}

// fleetCounters are the counters behind FleetStats.
type fleetCounters struct {
	built, acked, resends, rebuilds, requests, unanswered, skipped atomic.Uint64

	mu      sync.Mutex
	answers map[string]uint64
	failed  map[string]uint64
}

func (c *fleetCounters) count(m *map[string]uint64, code string, n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *m == nil {
		*m = map[string]uint64{}
	}
	(*m)[code] += n
}

// Stats returns the counts so far. It is safe to call during Run.
func (f *Fleet) Stats() FleetStats {
	c := &f.st
	s := FleetStats{Built: c.built.Load(), Acked: c.acked.Load(), Resends: c.resends.Load(),
		Rebuilds: c.rebuilds.Load(), Requests: c.requests.Load(), Unanswered: c.unanswered.Load(),
		Skipped: c.skipped.Load(), Answers: map[string]uint64{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.answers {
		s.Answers[k] = v
	}
	for k, v := range c.failed {
		if s.Failed == nil {
			s.Failed = map[string]uint64{}
		}
		s.Failed[k] = v
	}
	return s
}

func (f *Fleet) withDefaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&f.Gateways, DefaultFleetGateways)
	def(&f.Devices, DefaultDevices)
	def(&f.Batch, DefaultFleetBatch)
	def(&f.Payload, DefaultPayload)
	defd(&f.Linger, DefaultLinger)
	defd(&f.BaseDelay, DefaultBaseDelay)
	defd(&f.MaxDelay, DefaultMaxDelay)
	defd(&f.PendingFor, DefaultPendingFor)
	if f.Seed == 0 {
		f.Seed = DefaultSeed
	}
	if f.HTTPClient == nil {
		f.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	switch {
	case f.Node == "":
		return fmt.Errorf("%w: a fleet needs a node URL", ErrConfig)
	case f.Gateways < 1 || f.Devices < f.Gateways:
		return fmt.Errorf("%w: %d gateways for %d devices", ErrConfig, f.Gateways, f.Devices)
	case f.Batch < 1 || f.Batch > client.MaxBatchMessages:
		return fmt.Errorf("%w: batch %d, want 1..%d", ErrConfig, f.Batch, client.MaxBatchMessages)
	case f.Payload < 0 || f.Payload > dag.MaxPayload:
		return fmt.Errorf("%w: payload %d bytes", ErrConfig, f.Payload)
	case f.JSONPayload && f.Payload < MinJSONPayload:
		return fmt.Errorf("%w: payload %d bytes: a JSON reading takes at least %d", ErrConfig, f.Payload, MinJSONPayload)
	case f.Rate < 0 || f.Linger < 0 || f.BaseDelay < 0 || f.MaxDelay < f.BaseDelay || f.PendingFor < 0:
		return fmt.Errorf("%w: negative rate or duration, or MaxDelay below BaseDelay", ErrConfig)
	}
	return nil
}

// Run runs the gateways until ctx ends and the requests in flight then
// are answered (or time out), and returns nil; an error only for a Fleet
// it cannot run. Messages outstanding at the end are neither acknowledged
// nor counted as failed. Run must be called once.
func (f *Fleet) Run(ctx context.Context) error {
	if err := f.withDefaults(); err != nil {
		return err
	}
	c := client.New(f.Node, client.WithHTTPClient(f.HTTPClient), noRetry)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range f.Gateways {
		gw := f.newGateway(g, c, start)
		wg.Add(1)
		go func() {
			defer wg.Done()
			gw.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// fleetObserver is told what happens to each message, for measurement.
// sent returns whether the message is measured; the answer is handed back
// to acked and dropped.
type fleetObserver struct {
	sent    func(dev int, id dag.ID, seq uint64, at time.Time) (measured bool)
	acked   func(id dag.ID, measured bool)
	dropped func(id dag.ID, measured bool, code string) // given up: rebuilt, failed, or the run ended
}

// gwDevice is a device of a gateway.
type gwDevice struct {
	index    int
	key      ed25519.PrivateKey
	pub      dag.PublicKey
	nextSeq  uint64
	readings uint64
	busy     bool // a message of it is outstanding
}

// gwMsg is a message outstanding at its gateway: to build (m nil), or
// built and to be sent (again).
type gwMsg struct {
	dev          *gwDevice
	m            *dag.Message
	raw          []byte
	id           dag.ID
	sends        int       // times these bytes were sent
	due          time.Time // not before
	pendingSince time.Time // first 202 of these bytes
	measured     bool
}

// gwParent is a message of the gateway, to be approved.
type gwParent struct {
	id dag.ID
	ts int64
}

// gateway is one gateway of a Fleet: one goroutine, one request in flight.
type gateway struct {
	f     *Fleet
	c     *client.Client
	rng   *rand.Rand
	start time.Time
	rate  float64 // this gateway's share of Fleet.Rate

	devs    []*gwDevice
	free    []*gwDevice // devices with nothing outstanding, oldest first
	out     []*gwMsg    // outstanding messages
	lastAck gwParent    // the last message acknowledged; zero before any
	unchain bool        // the node refused something of the last batch answered
	made    uint64      // readings taken at a rate
	fails   int         // requests in a row that got no answer
	hold    time.Time   // no request before
}

func (f *Fleet) newGateway(g int, c *client.Client, start time.Time) *gateway {
	gw := &gateway{f: f, c: c, start: start, rate: f.Rate / float64(f.Gateways),
		rng: rand.New(rand.NewPCG(f.Seed, uint64(g)+1))}
	seq := uint64(start.UnixNano())
	for d := g; d < f.Devices; d += f.Gateways {
		key := ed25519.NewKeyFromSeed(deriveSeed("device", f.Seed, d))
		dev := &gwDevice{index: d, key: key, nextSeq: seq}
		copy(dev.pub[:], key[32:])
		gw.devs = append(gw.devs, dev)
		gw.free = append(gw.free, dev)
	}
	return gw
}

// run is the gateway's loop: take what is due, build what needs building
// on fresh tips, send it in one batch, act on the answers.
func (g *gateway) run(ctx context.Context) {
	defer g.abandonAll()
	for ctx.Err() == nil {
		if wake := g.wake(); !sleepUntil(ctx, wake.UnixNano()) {
			return
		}
		batch := g.take(time.Now())
		if len(batch) == 0 {
			continue
		}
		if !g.build(ctx, batch) {
			continue
		}
		g.send(ctx, batch)
	}
}

// wake returns when the gateway next has something to send: the earliest
// outstanding message or reading due (plus Linger at a rate), and not
// before its hold.
func (g *gateway) wake() time.Time {
	now := time.Now()
	next := now.Add(time.Second) // nothing due: look again in a second
	for _, m := range g.out {
		if m.due.Before(next) {
			next = m.due
		}
	}
	if len(g.free) > 0 {
		if g.rate == 0 {
			next = now
		} else if t := g.start.Add(time.Duration(math.Ceil(float64(g.made) / g.rate * 1e9))); t.Before(next) {
			next = t
		}
	}
	if g.rate > 0 && len(g.out) < g.f.Batch && next.After(now.Add(-g.f.Linger)) {
		next = next.Add(g.f.Linger)
	}
	if next.Before(g.hold) {
		next = g.hold
	}
	return next
}

// take returns the messages to send now, at most Batch: the outstanding
// ones due, then new readings of free devices.
func (g *gateway) take(now time.Time) []*gwMsg {
	var batch []*gwMsg
	rest := g.out[:0]
	for _, m := range g.out {
		if len(batch) < g.f.Batch && !m.due.After(now) {
			batch = append(batch, m)
		} else {
			rest = append(rest, m)
		}
	}
	g.out = rest
	n := g.f.Batch - len(batch)
	if g.rate > 0 {
		// Reading k is due at k / rate: those up to now are due.
		dueNow := uint64(float64(now.Sub(g.start))*g.rate/1e9) + 1
		if dueNow > g.made+uint64(len(g.devs)) { // more due than devices: skip the excess
			skip := dueNow - g.made - uint64(len(g.devs))
			g.f.st.skipped.Add(skip)
			g.made += skip
		}
		n = min(n, int(dueNow-min(dueNow, g.made)))
	}
	for ; n > 0 && len(g.free) > 0; n-- {
		dev := g.free[0]
		g.free = g.free[1:]
		dev.busy = true
		dev.readings++
		g.made++
		batch = append(batch, &gwMsg{dev: dev})
	}
	if g.rate > 0 && len(g.free) == 0 && n > 0 {
		g.f.st.skipped.Add(uint64(n))
		g.made += uint64(n)
	}
	return batch
}

// build asks the node for tips and builds the messages of batch that have
// none yet. It returns false, with the batch put back to wait for the
// gateway's backoff, when the node does not answer.
func (g *gateway) build(ctx context.Context, batch []*gwMsg) bool {
	need := false
	for _, m := range batch {
		need = need || m.m == nil
	}
	if !need {
		return true
	}
	tips, err := g.c.Tips(ctx, g.f.Payload)
	if err != nil {
		if ctx.Err() == nil {
			g.f.st.unanswered.Add(1)
			g.unanswered(batch)
		} else {
			g.out = append(g.out, batch...)
		}
		return false
	}
	prev := g.lastAck
	for i, m := range batch {
		if m.m != nil {
			continue
		}
		if g.newMessage(ctx, m, tips, i, prev) != nil {
			g.out = append(g.out, batch...) // ctx ended
			return false
		}
		if !g.unchain {
			prev = gwParent{id: m.id, ts: m.m.Timestamp}
		}
	}
	return true
}

// newMessage builds m's message, the i-th of its batch: its first parent
// one of the node's tips, its second prev (zero: the other tip), its
// device's next sequence number. It fails only when ctx ends.
func (g *gateway) newMessage(ctx context.Context, m *gwMsg, tips *client.Tips, i int, prev gwParent) error {
	p1, p2 := tips.Parents[i%2], tips.Parents[(i+1)%2]
	ts := max(time.Now().UnixNano(), tips.MinTimestamp)
	if prev != (gwParent{}) {
		p2, ts = prev.id, max(ts, prev.ts)
	}
	payload := make([]byte, g.f.Payload)
	if g.f.JSONPayload {
		payload = appendReading(payload[:0], m.dev.readings*uint64(g.f.Devices)+uint64(m.dev.index), g.f.Payload)
	} else {
		for k := range payload {
			payload[k] = byte(' ' + (k*31+m.dev.index)%95)
		}
		if len(payload) >= 8 {
			binary.BigEndian.PutUint64(payload, m.dev.readings)
		}
	}
	msg := &dag.Message{Version: dag.Version, Network: tips.NetworkID, Parents: [2]dag.ID{p1, p2},
		Seq: m.dev.nextSeq, Timestamp: ts, Payload: payload}
	m.dev.nextSeq++ // taken, whatever becomes of this message
	msg.Sign(m.dev.key)
	nonce, err := pow.Solve(ctx, bytes.Clone(msg.Bytes()), tips.Difficulty, 1)
	if err != nil {
		return err
	}
	msg.SetNonce(nonce)
	m.m, m.raw, m.id = msg, msg.Bytes(), msg.ID()
	m.sends, m.pendingSince = 0, time.Time{}
	g.f.st.built.Add(1)
	return nil
}

// send submits batch in one request and acts on each message's answer.
func (g *gateway) send(ctx context.Context, batch []*gwMsg) {
	raws := make([][]byte, len(batch))
	now := time.Now()
	for i, m := range batch {
		raws[i] = m.raw
		if m.sends == 0 && g.f.obs != nil {
			m.measured = g.f.obs.sent(m.dev.index, m.id, m.m.Seq, now)
		}
		if m.sends > 0 {
			g.f.st.resends.Add(1)
		}
		m.sends++
	}
	g.f.st.requests.Add(1)
	// A request once sent is seen through to its answer, even when ctx
	// ends meanwhile (the HTTP client's timeout bounds it): a gateway that
	// stops leaves no message half-submitted.
	res, err := g.c.SubmitBatch(context.WithoutCancel(ctx), raws)
	var ae *client.APIError
	switch {
	case err == nil:
		g.fails, g.unchain = 0, false
		for i, m := range batch {
			if judge(res[i].Status, codeOf(res[i])) != acked {
				g.unchain = true
			}
			g.answer(m, res[i].Status, codeOf(res[i]), 0)
		}
	case errors.As(err, &ae) && ae.Status != http.StatusTooManyRequests && ae.Status < 500:
		// The node refused the request as a whole: it is malformed.
		g.fails, g.unchain = 0, true
		for _, m := range batch {
			g.answer(m, ae.Status, ae.Code, 0)
		}
	case errors.As(err, &ae):
		// 429 or 5xx for the whole request: answered, not taken.
		g.fails, g.unchain = 0, true
		g.hold = time.Now().Add(max(ae.RetryAfter, g.backoff(1)))
		for _, m := range batch {
			g.answer(m, ae.Status, ae.Code, ae.RetryAfter)
		}
	default:
		g.f.st.unanswered.Add(1)
		g.unanswered(batch)
	}
}

// codeOf returns the code of a batch result: "" for 201, "pending" for
// 202, "duplicate", "rate_limited", ...
func codeOf(r client.BatchResult) string {
	var ae *client.APIError
	switch {
	case r.Status == http.StatusCreated:
		return ""
	case r.Pending:
		return "pending"
	case errors.As(r.Err, &ae):
		return ae.Code
	}
	return ""
}

// unanswered puts batch back after a request that got no answer: the
// gateway holds its requests for a backoff that grows with such failures
// in a row, and each message waits with it.
func (g *gateway) unanswered(batch []*gwMsg) {
	g.fails++
	g.hold = time.Now().Add(g.backoff(g.fails))
	for _, m := range batch {
		m.due = g.hold
	}
	g.out = append(g.out, batch...)
}

// verdict is what a gateway does with a message after an answer.
type verdict int

const (
	acked   verdict = iota // durable: done
	resend                 // the same bytes again, after a backoff
	rebuild                // a new message on fresh tips
	giveUp                 // the message is wrong
)

// judge returns what to do after the answer status and code to a message
// (docs/API.md, "What a device does with each answer").
func judge(status int, code string) verdict {
	switch {
	case status == http.StatusCreated || code == client.CodeDuplicate:
		return acked
	case status == http.StatusAccepted:
		return resend // until PendingFor passes
	case code == client.CodeUnknownParents || code == client.CodeInvalidParent || code == client.CodeStaleSequence:
		return rebuild
	case status == http.StatusTooManyRequests || status >= 500:
		return resend
	}
	return giveUp
}

// answer acts on the answer to one message.
func (g *gateway) answer(m *gwMsg, status int, code string, retryAfter time.Duration) {
	now := time.Now()
	if code == "" && status != http.StatusCreated {
		code = fmt.Sprintf("status_%d", status)
	}
	if status != http.StatusCreated {
		g.f.st.count(&g.f.st.answers, code, 1)
	}
	v := judge(status, code)
	if status == http.StatusAccepted {
		if m.pendingSince.IsZero() {
			m.pendingSince = now
		}
		if now.Sub(m.pendingSince) >= g.f.PendingFor {
			v = rebuild
		}
	}
	switch v {
	case acked:
		g.ack(m, now)
	case resend:
		m.due = now.Add(max(retryAfter, g.backoff(m.sends)))
		g.out = append(g.out, m)
	case rebuild:
		g.f.st.rebuilds.Add(1)
		g.drop(m, code)
		m.m, m.raw = nil, nil
		m.due = now.Add(g.backoff(1))
		g.out = append(g.out, m)
	case giveUp:
		g.f.st.count(&g.f.st.failed, code, 1)
		g.drop(m, code)
		g.release(m.dev)
	}
}

// ack records m as acknowledged and frees its device.
func (g *gateway) ack(m *gwMsg, at time.Time) {
	g.f.st.acked.Add(1)
	if g.f.obs != nil {
		g.f.obs.acked(m.id, m.measured)
	}
	if g.f.OnAck != nil {
		g.f.OnAck(Ack{Device: m.dev.index, Issuer: m.dev.pub, Seq: m.m.Seq, ID: m.id, At: at, Timestamp: m.m.Timestamp})
	}
	g.lastAck = gwParent{id: m.id, ts: m.m.Timestamp}
	g.release(m.dev)
}

// drop tells the observer that m's bytes are given up.
func (g *gateway) drop(m *gwMsg, code string) {
	if g.f.obs != nil && m.m != nil && m.sends > 0 {
		g.f.obs.dropped(m.id, m.measured, code)
	}
}

// release makes dev free for its next reading.
func (g *gateway) release(dev *gwDevice) {
	dev.busy = false
	g.free = append(g.free, dev)
}

// abandonAll gives up what is outstanding when the run ends.
func (g *gateway) abandonAll() {
	for _, m := range g.out {
		g.drop(m, "interrupted")
	}
	g.out = nil
}

// backoff returns a wait before attempt n+1: drawn uniformly from 0 up to
// min(MaxDelay, BaseDelay x 2^(n-1)), the full jitter of client.Retry.
func (g *gateway) backoff(n int) time.Duration {
	bound := g.f.MaxDelay
	if shift := n - 1; shift >= 0 && shift < 32 && g.f.BaseDelay<<shift < bound && g.f.BaseDelay<<shift > 0 {
		bound = g.f.BaseDelay << shift
	}
	return time.Duration(g.rng.Float64() * float64(bound))
}

// AckLog keeps acknowledged messages, for a check afterwards: 80 bytes
// each. It is safe for concurrent use; its Add is a Fleet's OnAck.
type AckLog struct {
	mu   sync.Mutex
	acks []Ack
}

// Add records a.
func (l *AckLog) Add(a Ack) {
	l.mu.Lock()
	l.acks = append(l.acks, a)
	l.mu.Unlock()
}

// Acks returns a copy of what was recorded, in order of arrival.
func (l *AckLog) Acks() []Ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Ack(nil), l.acks...)
}

// Len returns the number recorded.
func (l *AckLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}
