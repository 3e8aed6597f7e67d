// Package mqtt meets devices where they are: it carries a node's
// submissions, tips, confirmations and rule actions over MQTT
// (docs/MQTT.md). The node is a client of an existing broker
// (Config.Broker, MQTT 3.1.1, with paho), or serves an embedded broker of
// its own (Config.Listen, MQTT 5 and 3.1.1, with mochi-mqtt), or both.
//
// A submission is a message's raw bytes published with QoS 1 to
// weft/v1/<network>/submit. It takes the HTTP API's path through the node
// (the same checks, edge policy and outcome codes), and the node
// acknowledges it (PUBACK) only once it has an outcome: for a message
// stored, after the store's commit. The outcome is published as JSON, as
// one result of POST /api/v1/messages/batch, on the publisher's MQTT 5
// response topic with its correlation data, or else on
// weft/v1/<network>/result/<issuer>.
package mqtt

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/rules"
)

// Config configures a Bridge. Zero fields take the defaults documented on
// each.
type Config struct {
	// Network is the network's name, the second level of every topic.
	// Required.
	Network string

	// Broker is the URL of an existing broker the node connects to:
	// tcp://HOST:PORT, or ssl:// (or tls://) for TLS. Empty: none.
	Broker string
	// ClientID is the node's client id at the broker; its session there
	// is persistent, so that what was published while the node was away
	// is delivered when it comes back. Default "weft-" and the first 16
	// hex digits of the node's key.
	ClientID string
	// Username and Password authenticate the node at the broker.
	Username, Password string
	// CAFile is a PEM file of the CAs the broker's certificate is checked
	// against (default: the system's); CertFile and KeyFile a client
	// certificate, both or neither.
	CAFile, CertFile, KeyFile string

	// Listen is the address of the embedded broker, such as
	// 127.0.0.1:1883. Empty: none.
	Listen string
	// MaxClients bounds the embedded broker's connections. Default 1,000.
	MaxClients int

	// Confirmed turns on the publication of every confirmed message, with
	// its payload, to weft/v1/<network>/confirmed/<issuer>.
	Confirmed bool
	// TipsInterval is how often the retained tips are refreshed while they
	// change. Default 250 ms.
	TipsInterval time.Duration

	Log zerolog.Logger
}

// Defaults.
const (
	DefaultMaxClients   = 1000
	DefaultTipsInterval = 250 * time.Millisecond
	// maxBatch is the most submissions from the external broker handed to
	// the node at once.
	maxBatch = 256
)

// ErrConfig: the configuration is not usable.
var ErrConfig = errors.New("mqtt: invalid configuration")

// Topics are the bridge's topics on one network.
type Topics struct {
	Submit    string // weft/v1/<network>/submit
	Tips      string // weft/v1/<network>/tips, retained
	Result    string // weft/v1/<network>/result/, then the issuer's hex key
	Confirmed string // weft/v1/<network>/confirmed/, then the issuer's hex key
}

// TopicsOf returns the topics of network.
func TopicsOf(network string) Topics {
	p := "weft/v1/" + network + "/"
	return Topics{Submit: p + "submit", Tips: p + "tips", Result: p + "result/", Confirmed: p + "confirmed/"}
}

// Bridge connects a node to MQTT. Make one with New, hand its Deliverer to
// the node's rule engine (node.Config.RuleEngine.Kinds["mqtt"]) before the
// node is made, then Start it with the node.
type Bridge struct {
	cfg    Config
	topics Topics
	log    zerolog.Logger
	n      *node.Node

	ext *external // nil without Broker
	emb *embedded // nil without Listen

	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New checks cfg and returns a bridge that is not started.
func New(cfg Config) (*Bridge, error) {
	if cfg.Network == "" || strings.ContainsAny(cfg.Network, "/+#") {
		return nil, fmt.Errorf("%w: network %q: it is a level of the topics, and cannot be empty or hold / + #", ErrConfig, cfg.Network)
	}
	if cfg.Broker != "" {
		u, err := url.Parse(cfg.Broker)
		if err != nil || u.Host == "" || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtt" && u.Scheme != "mqtts") {
			return nil, fmt.Errorf("%w: mqtt-broker %q: want tcp://HOST:PORT or ssl://HOST:PORT", ErrConfig, cfg.Broker)
		}
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, fmt.Errorf("%w: a client certificate needs both mqtt-cert-file and mqtt-key-file", ErrConfig)
	}
	if cfg.MaxClients == 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.MaxClients < 1 {
		return nil, fmt.Errorf("%w: mqtt-max-clients %d: want at least 1", ErrConfig, cfg.MaxClients)
	}
	if cfg.TipsInterval == 0 {
		cfg.TipsInterval = DefaultTipsInterval
	}
	if cfg.TipsInterval < 10*time.Millisecond {
		return nil, fmt.Errorf("%w: tips interval %v: want at least 10ms", ErrConfig, cfg.TipsInterval)
	}
	return &Bridge{cfg: cfg, topics: TopicsOf(cfg.Network), log: cfg.Log.With().Str("part", "mqtt").Logger()}, nil
}

// Enabled reports whether the bridge has a broker to speak to.
func (b *Bridge) Enabled() bool { return b.cfg.Broker != "" || b.cfg.Listen != "" }

// Start connects to the broker and opens the embedded one, as configured,
// and serves until Close. An embedded broker that cannot listen is an
// error; an external broker that cannot be reached is not: the bridge
// keeps trying, with backoff.
func (b *Bridge) Start(n *node.Node) error {
	b.n = n
	if b.cfg.ClientID == "" {
		b.cfg.ClientID = "weft-" + n.Info().NodeID.String()[:16]
	}
	ctx, stop := context.WithCancel(context.Background())
	b.stop = stop
	if b.cfg.Listen != "" {
		emb, err := startEmbedded(b)
		if err != nil {
			stop()
			return err
		}
		b.emb = emb
	}
	if b.cfg.Broker != "" {
		ext, err := startExternal(ctx, b)
		if err != nil {
			b.Close()
			return err
		}
		b.ext = ext
	}
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.publishTips(ctx) }()
	if b.cfg.Confirmed {
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.publishConfirmed(ctx) }()
	}
	return nil
}

// Addr is the embedded broker's address, once started; empty without one.
func (b *Bridge) Addr() string {
	if b.emb == nil {
		return ""
	}
	return b.emb.addr
}

// Close stops the bridge: the submissions in flight are answered first.
// Closing again does nothing.
func (b *Bridge) Close() {
	b.closeOnce.Do(func() {
		if b.stop != nil {
			b.stop()
		}
		b.wg.Wait()
		if b.ext != nil {
			b.ext.close()
		}
		if b.emb != nil {
			b.emb.close()
		}
	})
}

// publisher is a broker the bridge publishes to.
type publisher interface {
	// publish sends payload to topic with QoS 1 and returns once the
	// broker has it.
	publish(ctx context.Context, topic string, payload []byte, retain bool) error
	// respond sends an answer with QoS 1 and does not wait for the
	// broker: answers go out at the pace submissions come in. corr, if
	// not nil, is the MQTT 5 correlation data.
	respond(topic string, payload, corr []byte) error
}

// publishers are the brokers the bridge speaks to.
func (b *Bridge) publishers() []publisher {
	var ps []publisher
	if b.emb != nil {
		ps = append(ps, b.emb)
	}
	if b.ext != nil {
		ps = append(ps, b.ext)
	}
	return ps
}

// submission is a message's bytes from a broker, and where its answer
// goes.
type submission struct {
	raw           []byte
	responseTopic string // MQTT 5; empty: the issuer's result topic
	corr          []byte
}

// submit hands the submissions to the node as POST
// /api/v1/messages/batch does, and returns their results.
func (b *Bridge) submit(ctx context.Context, subs []submission) []wire.BatchResult {
	raws := make([][]byte, len(subs))
	for i := range subs {
		raws[i] = subs[i].raw
	}
	return api.SubmitRaw(ctx, b.n, raws)
}

// gather waits for one item of ch and takes whatever else it holds, up to
// maxBatch in all, appended to buf; false once ctx ends first.
func gather[T any](ctx context.Context, ch <-chan T, buf []T) ([]T, bool) {
	select {
	case <-ctx.Done():
		return buf, false
	case v := <-ch:
		buf = append(buf, v)
	}
	for len(buf) < maxBatch {
		select {
		case v := <-ch:
			buf = append(buf, v)
		default:
			return buf, true
		}
	}
	return buf, true
}

// issuerOffset is where the issuer's key lies in a message's encoding
// (docs/PROTOCOL.md 1): after the version, the network id and the parents.
const issuerOffset = 1 + 8 + 2*32

// answerTopic is where the answer to s goes: its response topic, or the
// result topic of the issuer its bytes name; empty if it has neither
// (bytes too short to name an issuer).
func (b *Bridge) answerTopic(s *submission) string {
	if s.responseTopic != "" {
		return s.responseTopic
	}
	if len(s.raw) < issuerOffset+32 {
		return ""
	}
	return b.topics.Result + hex.EncodeToString(s.raw[issuerOffset:issuerOffset+32])
}

// answer publishes r, the result of s, through p.
func (b *Bridge) answer(p publisher, s *submission, r *wire.BatchResult) {
	topic := b.answerTopic(s)
	if topic == "" {
		b.log.Debug().Int("status", r.Status).Msg("a submission too short to name an issuer, without a response topic, is not answered")
		return
	}
	body, _ := json.Marshal(r)
	if err := p.respond(topic, body, s.corr); err != nil {
		b.log.Warn().Err(err).Str("topic", topic).Msg("publishing a submission's result failed")
	}
}

// publishTips keeps the retained tips up to date: the answer of GET
// /api/v1/tips for an empty payload, with the network's pow_base, so that
// a device computes the difficulty of its own size (docs/PROTOCOL.md 4).
func (b *Bridge) publishTips(ctx context.Context) {
	t := time.NewTicker(b.cfg.TipsInterval)
	defer t.Stop()
	var last [2]dag.ID
	first := true
	p := b.n.Params()
	for {
		tips := b.n.Tips(0)
		if first || tips.Parents != last {
			doc, _ := json.Marshal(wire.Tips{
				Parents:      []string{tips.Parents[0].String(), tips.Parents[1].String()},
				MinTimestamp: tips.MinTimestamp,
				Difficulty:   tips.Difficulty,
				PoWBase:      p.PoWBase,
				Network:      b.cfg.Network,
				NetworkID:    wire.FormatNetworkID(p.Network),
				MaxPayload:   p.MaxPayload,
			})
			ok := true
			for _, pub := range b.publishers() {
				if err := pub.publish(ctx, b.topics.Tips, doc, true); err != nil {
					ok = false
				}
			}
			if ok {
				last, first = tips.Parents, false
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// confirmedPage is how many confirmed messages publishConfirmed reads from
// the store at a time.
const confirmedPage = 256

// publishConfirmed publishes every confirmation from the bridge's start on
// to weft/v1/<network>/confirmed/<issuer>, in the node's confirmation
// order. It follows that order in the store with a cursor, woken by the
// node's events, so that a broker that is slow or away holds back the
// cursor and nothing else: no queue grows.
func (b *Bridge) publishConfirmed(ctx context.Context) {
	next := b.n.ConfirmCount()
	var buf []byte
	evs := make([]node.Event, 0, 1024)
	for ctx.Err() == nil {
		sub, err := b.n.Subscribe()
		if err != nil {
			b.log.Warn().Err(err).Msg("confirmed messages: no event subscription; retrying")
			sleep(ctx, time.Second)
			continue
		}
		for ctx.Err() == nil {
			until := b.n.ConfirmCount()
			for next < until && ctx.Err() == nil {
				page, err := b.n.ConfirmedSince(next, int(min(until-next, confirmedPage)))
				if err != nil || len(page) == 0 {
					b.log.Warn().Err(err).Uint64("from", next).Msg("confirmed messages: reading the confirmation order failed; retrying")
					sleep(ctx, time.Second)
					break
				}
				for _, c := range page {
					m := c.Msg
					buf = wire.AppendConfirmedJSON(buf[:0], &wire.ConfirmedEvent{ID: m.ID(), Position: c.Pos,
						ConfirmedAt: c.ConfirmedAt, Confirmation: c.Seq, Issuer: m.Issuer, Seq: m.Seq,
						Timestamp: m.Timestamp, Payload: m.Payload, HasPayload: true})
					topic := b.topics.Confirmed + m.Issuer.String()
					for _, p := range b.publishers() {
						for p.publish(ctx, topic, buf, false) != nil && ctx.Err() == nil {
							sleep(ctx, 200*time.Millisecond) // the broker is away: wait for it
						}
					}
					next = c.Seq + 1
				}
			}
			// The events only wake the cursor: the store has what they say.
			var wait <-chan struct{}
			evs, wait, err = sub.Next(evs[:0], cap(evs))
			if err != nil { // behind: the store has it all, subscribe again
				break
			}
			if len(evs) > 0 {
				continue
			}
			select {
			case <-ctx.Done():
			case <-wait:
			case <-time.After(time.Second):
			}
		}
		sub.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Deliverer is the rules engine's constructor of the mqtt action
// (rules.Config.Kinds): a match is published as JSON with QoS 1 to the
// action's topic, on the external broker if there is one, else on the
// embedded one.
func (b *Bridge) Deliverer(a rules.Action) (rules.Deliverer, error) {
	if !b.Enabled() {
		return nil, fmt.Errorf("%w: an mqtt action needs mqtt-broker or mqtt-listen", rules.ErrInvalid)
	}
	if err := CheckTopic(a.Topic, b.cfg.Network); err != nil {
		return nil, fmt.Errorf("%w: %v", rules.ErrInvalid, err)
	}
	return &ruleAction{b: b, topic: a.Topic}, nil
}

// CheckTopic checks a rule's topic: a topic name, not a filter, outside
// the bridge's own topics.
func CheckTopic(topic, network string) error {
	switch {
	case topic == "" || len(topic) > 256:
		return fmt.Errorf("topic %.80q: want 1 to 256 bytes", topic)
	case strings.ContainsAny(topic, "+#\x00"):
		return fmt.Errorf("topic %.80q: a topic name holds no wildcard", topic)
	case strings.HasPrefix(topic, "weft/v1/"+network+"/"):
		return fmt.Errorf("topic %.80q: the node's own topics are weft/v1/%s/...", topic, network)
	}
	return nil
}

type ruleAction struct {
	b     *Bridge
	topic string
}

func (r *ruleAction) Deliver(ctx context.Context, d *rules.Delivery) error {
	var p publisher
	switch {
	case r.b.ext != nil:
		p = r.b.ext
	case r.b.emb != nil:
		p = r.b.emb
	default:
		return errors.New("mqtt: the bridge is not started")
	}
	return p.publish(ctx, r.topic, d.Body, false)
}
