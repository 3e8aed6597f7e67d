package mqtt

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	broker "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
)

// The embedded broker's bounds (docs/MQTT.md, "Bounds").
const (
	// maxSubscriptions is the most topic filters one client holds.
	maxSubscriptions = 64
	// writesPending is the most packets queued to one client; past it the
	// broker drops what it would send that client.
	writesPending = 128
	// inflight is the most QoS 1 messages the broker keeps for one client
	// until it acknowledges them.
	inflight = 128
	// receiveMaximum is the most QoS 1 submissions a client has in flight
	// (MQTT 5 tells the client; a 3.1.1 client over it is disconnected).
	receiveMaximum = 64
	// sessionExpiry is how long, in seconds, the session of a client that
	// went away is kept, with what it missed.
	sessionExpiry = 600
	// packetOverhead is the room in a packet beside the message: fixed
	// header, topic and properties.
	packetOverhead = 1024
)

// embedded is a broker of the node's own (mochi-mqtt).
type embedded struct {
	b    *Bridge
	srv  *broker.Server
	self *broker.Client // the node's client: publishes bypass the ACL
	addr string
	ctx  context.Context
	stop context.CancelFunc
	reqs chan request // to coalesce
}

// request is a client's submission waiting for its result.
type request struct {
	s    *submission
	done chan wire.BatchResult
}

// batch hands s to the coalescer and waits for its result. Each client's
// submissions come one at a time (its PUBACK waits for the result), so
// batching happens across clients: the coalescer takes whatever is
// waiting, up to maxBatch, as one submission to the node.
func (e *embedded) batch(s *submission) wire.BatchResult {
	r := request{s: s, done: make(chan wire.BatchResult, 1)}
	select {
	case e.reqs <- r:
		return <-r.done
	case <-e.ctx.Done():
		return wire.BatchResult{Status: wire.Status(wire.CodeShuttingDown),
			Error: &wire.Error{Code: wire.CodeShuttingDown, Message: "mqtt: the node is stopping"}}
	}
}

// coalesce submits the waiting requests in batches until the broker stops.
func (e *embedded) coalesce() {
	reqs := make([]request, 0, maxBatch)
	subs := make([]submission, 0, maxBatch)
	for {
		var ok bool
		if reqs, ok = gather(e.ctx, e.reqs, reqs[:0]); !ok {
			return
		}
		subs = subs[:0]
		for _, r := range reqs {
			subs = append(subs, *r.s)
		}
		for i, res := range e.b.submit(context.WithoutCancel(e.ctx), subs) {
			reqs[i].done <- res
		}
	}
}

func startEmbedded(b *Bridge) (*embedded, error) {
	caps := broker.NewDefaultServerCapabilities()
	caps.MaximumClients = int64(b.cfg.MaxClients)
	caps.MaximumPacketSize = uint32(dag.MinSize + b.n.Params().MaxPayload + packetOverhead)
	caps.MaximumClientWritesPending = writesPending
	caps.MaximumInflight = inflight
	caps.ReceiveMaximum = receiveMaximum
	caps.MaximumSessionExpiryInterval = sessionExpiry
	caps.MaximumMessageExpiryInterval = sessionExpiry
	caps.MaximumQos = 1
	caps.TopicAliasMaximum = 64
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	srv := broker.New(&broker.Options{
		Capabilities: caps,
		InlineClient: true,
		Logger:       slog.New(quiet{slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})}),
	})
	ctx, stop := context.WithCancel(context.Background())
	e := &embedded{b: b, srv: srv, ctx: ctx, stop: stop, reqs: make(chan request)}
	go e.coalesce()
	e.self = srv.NewClient(nil, "local", "weft-node", true)
	e.self.Properties.ProtocolVersion = 5
	if err := srv.AddHook(&hook{e: e}, nil); err != nil {
		stop()
		return nil, err
	}
	l := listeners.NewTCP(listeners.Config{ID: "weft", Address: b.cfg.Listen})
	if err := srv.AddListener(l); err != nil {
		stop()
		return nil, fmt.Errorf("mqtt: listening on %s: %w", b.cfg.Listen, err)
	}
	if err := srv.Serve(); err != nil {
		stop()
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	e.addr = l.Address()
	b.log.Info().Str("listen", e.addr).Msg("embedded MQTT broker on")
	return e, nil
}

// quiet is the broker's log without the errors a client causes: a
// refused submission (answered, and counted by the node), a connection
// that breaks. The broker's own errors are kept.
type quiet struct{ slog.Handler }

func (q quiet) Handle(ctx context.Context, r slog.Record) error {
	switch r.Message {
	case "publish packet error", "", "failed to read packet", "client disconnected":
		return nil
	}
	return q.Handler.Handle(ctx, r)
}

func (q quiet) WithAttrs(as []slog.Attr) slog.Handler { return quiet{q.Handler.WithAttrs(as)} }
func (q quiet) WithGroup(g string) slog.Handler       { return quiet{q.Handler.WithGroup(g)} }

func (e *embedded) close() {
	e.stop()
	e.srv.Close()
}

func (e *embedded) publish(_ context.Context, topic string, payload []byte, retain bool) error {
	return e.inject(topic, payload, retain, nil)
}

func (e *embedded) respond(topic string, payload, corr []byte) error {
	return e.inject(topic, payload, false, corr)
}

// inject hands a message of the node's to the broker, which queues it to
// its subscribers (to each at most writesPending).
func (e *embedded) inject(topic string, payload []byte, retain bool, corr []byte) error {
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: retain},
		TopicName:   topic,
		Payload:     bytes.Clone(payload),
		PacketID:    1, // inline: the broker needs one, and acknowledges nothing to us
	}
	if corr != nil {
		pk.Properties.CorrelationData = corr
	}
	return e.srv.InjectPacket(e.self, pk)
}

// hook is the node's policy in the broker: anyone may connect (a device
// proves itself by its signature, as over HTTP), only the node publishes
// on its own topics, nothing is retained but the node's tips, and a
// submission is answered before its PUBACK.
type hook struct {
	broker.HookBase
	e *embedded
}

func (h *hook) ID() string { return "weft" }

func (h *hook) Provides(b byte) bool {
	return b == broker.OnConnectAuthenticate || b == broker.OnACLCheck || b == broker.OnPublish
}

// OnConnectAuthenticate refuses a new session once the broker holds
// MaxClients of them, connected or kept for a client that went away.
func (h *hook) OnConnectAuthenticate(cl *broker.Client, _ packets.Packet) bool {
	if _, known := h.e.srv.Clients.Get(cl.ID); known {
		return true
	}
	return h.e.srv.Clients.Len() < h.e.b.cfg.MaxClients+1 // the node's own inline client is one
}

// OnACLCheck lets a client publish anywhere but the node's topics (the
// submit topic excepted) and hold at most maxSubscriptions filters.
func (h *hook) OnACLCheck(cl *broker.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	if write {
		own := "weft/v1/" + h.e.b.cfg.Network + "/"
		return topic == h.e.b.topics.Submit || !strings.HasPrefix(topic, own)
	}
	return cl.State.Subscriptions.Len() < maxSubscriptions
}

// OnPublish takes submissions: it hands the message to the node and
// answers it, and only then returns, so that the broker's PUBACK follows
// the outcome (for a stored message, the store's commit). To an MQTT 5
// client a refusal is also the PUBACK's reason code, with the API's code
// as its reason string. Other clients' retained messages are not kept.
func (h *hook) OnPublish(cl *broker.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	pk.FixedHeader.Retain = false
	if pk.TopicName != h.e.b.topics.Submit {
		return pk, nil
	}
	s := submission{raw: bytes.Clone(pk.Payload), responseTopic: pk.Properties.ResponseTopic}
	if s.responseTopic != "" {
		s.corr = bytes.Clone(pk.Properties.CorrelationData)
	}
	r := h.e.batch(&s)
	h.e.b.answer(h.e, &s, &r)
	if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
		if c, refused := reasonOf(&r); refused {
			return pk, c
		}
	}
	return pk, packets.CodeSuccessIgnore // acknowledged, and passed to no subscriber
}

// reasonOf is the MQTT 5 PUBACK reason code of a result: success for a
// message stored, held for its parents or already stored, else a code of
// the refusal's kind, whose reason string is the API's code.
func reasonOf(r *wire.BatchResult) (packets.Code, bool) {
	if r.Error == nil || r.Error.Code == wire.CodeDuplicate {
		return packets.Code{}, false
	}
	c := packets.Code{Code: packets.ErrImplementationSpecificError.Code, Reason: r.Error.Code}
	switch r.Error.Code {
	case wire.CodeMalformed, wire.CodeTooLarge:
		c.Code = packets.ErrPayloadFormatInvalid.Code
	case wire.CodeForbidden, wire.CodeRevoked:
		c.Code = packets.ErrNotAuthorized.Code
	case wire.CodeRateLimited, wire.CodeOverloaded, wire.CodeShuttingDown, wire.CodeStorageUnavailable, wire.CodeNotReady:
		c.Code = packets.ErrQuotaExceeded.Code
	case wire.CodeInternal:
		c.Code = packets.ErrUnspecifiedError.Code
	}
	return c, true
}
