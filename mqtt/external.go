package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/weftnet/weft/api/wire"
)

// The external broker's pacing.
const (
	// queued is the most submissions received from the broker and not yet
	// answered; the broker holds the rest (it sends no more than its
	// in-flight window of unacknowledged ones anyway).
	queued = 1024
	// publishTimeout bounds the wait for the broker's PUBACK of what the
	// node publishes.
	publishTimeout = 10 * time.Second
	// maxReconnect is the longest wait between attempts to reach the
	// broker; the waits double up to it.
	maxReconnect = 30 * time.Second
)

// errNotConnected: the broker is away; what was to be published waits.
var errNotConnected = errors.New("mqtt: not connected to the broker")

// external is the node's connection to an existing broker (paho, MQTT
// 3.1.1). The session is persistent (clean session off, a stable client
// id), and submissions are acknowledged by hand, after their outcome: what
// the broker delivered and the node did not acknowledge, because it
// stopped or the connection broke, the broker delivers again.
type external struct {
	b         *Bridge
	c         paho.Client
	subs      chan paho.Message
	done      chan struct{}
	listening atomic.Bool // subscribed to the submit topic on this connection
	// answers are the tokens of the batch's answers, and answerErr the
	// first answer that could not be sent: serve's alone.
	answers   []paho.Token
	answerErr error
}

func startExternal(ctx context.Context, b *Bridge) (*external, error) {
	e := &external{b: b, subs: make(chan paho.Message, queued), done: make(chan struct{})}
	o := paho.NewClientOptions().AddBroker(b.cfg.Broker).SetClientID(b.cfg.ClientID).
		SetUsername(b.cfg.Username).SetPassword(b.cfg.Password).
		SetCleanSession(false).SetAutoAckDisabled(true).SetOrderMatters(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(maxReconnect).SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).SetWriteTimeout(publishTimeout).
		SetProtocolVersion(4)
	if tc, err := tlsConfig(b.cfg); err != nil {
		return nil, err
	} else if tc != nil {
		o.SetTLSConfig(tc)
	}
	o.SetOnConnectHandler(func(c paho.Client) {
		b.log.Info().Str("broker", b.cfg.Broker).Msg("connected to the MQTT broker")
		// Subscribed at every connection: a broker that lost the session
		// (restarted without persistence) has lost the subscription too.
		// The tips go out once it is in place, so that a device that reads
		// them finds the node listening.
		for c.IsConnectionOpen() {
			tok := c.Subscribe(b.topics.Submit, 1, e.received)
			if tok.WaitTimeout(publishTimeout) && tok.Error() == nil {
				e.listening.Store(true)
				return
			}
			b.log.Warn().Err(tok.Error()).Str("topic", b.topics.Submit).Msg("subscribing at the MQTT broker failed; trying again")
			time.Sleep(time.Second)
		}
	})
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		e.listening.Store(false)
		b.log.Warn().Err(err).Str("broker", b.cfg.Broker).Msg("lost the MQTT broker; reconnecting")
	})
	o.SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
		b.log.Debug().Str("broker", b.cfg.Broker).Msg("reconnecting to the MQTT broker")
	})
	e.c = paho.NewClient(o)
	e.c.Connect() // with ConnectRetry it keeps trying; the token is not waited for
	b.wg.Add(1)
	go func() { defer b.wg.Done(); defer close(e.done); e.serve(ctx) }()
	return e, nil
}

// received queues a submission for serve. It blocks while the queue is
// full, which holds back the broker's deliveries.
func (e *external) received(_ paho.Client, m paho.Message) {
	select {
	case e.subs <- m:
	case <-e.done:
	}
}

// serve hands the queued submissions to the node in batches, in the order
// they came, answers them, and then acknowledges them, in that order.
func (e *external) serve(ctx context.Context) {
	batch := make([]paho.Message, 0, maxBatch)
	subs := make([]submission, 0, maxBatch)
	for {
		var ok bool
		if batch, ok = gather(ctx, e.subs, batch[:0]); !ok {
			return
		}
		subs = subs[:0]
		for _, m := range batch {
			subs = append(subs, submission{raw: m.Payload()})
		}
		// The node answers every submission, at its submit timeout at the
		// latest; a stopping bridge waits for that rather than leave
		// submissions it handed over unacknowledged (settle).
		results, ok := e.settle(ctx, subs)
		if !ok {
			return // stopping: unacknowledged, the broker delivers them again
		}
		// A submission is acknowledged once the broker has its answer: a
		// node killed in between leaves it to be delivered again, and
		// answered again (a stored one as a duplicate), rather than
		// acknowledged and never answered.
		e.answers, e.answerErr = e.answers[:0], nil
		for i := range batch {
			e.b.answer(e, &subs[i], &results[i])
		}
		if !e.answered(ctx) {
			continue // unacknowledged: the broker delivers them again on the next connection
		}
		for i := range batch {
			batch[i].Ack()
		}
	}
}

// answered waits until the broker has acknowledged every answer of the
// batch (publishTimeout at most), and reports whether it has.
func (e *external) answered(ctx context.Context) bool {
	if e.answerErr != nil {
		return false
	}
	deadline := time.NewTimer(publishTimeout)
	defer deadline.Stop()
	for _, t := range e.answers {
		select {
		case <-t.Done():
			if t.Error() != nil {
				e.b.log.Warn().Err(t.Error()).Msg("a submission's answer was not acknowledged by the broker; the submission is left unacknowledged")
				return false
			}
		case <-deadline.C:
			e.b.log.Warn().Dur("waited", publishTimeout).Msg("the broker did not acknowledge the answers; the submissions are left unacknowledged")
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// settle submits subs until each has an outcome that is not the node's
// own passing state (503: overloaded, not ready, its store failing,
// stopping): those are submitted again, with backoff, rather than
// acknowledged, since the broker would not deliver them again. It reports
// false if the bridge stops first.
func (e *external) settle(ctx context.Context, subs []submission) ([]wire.BatchResult, bool) {
	actx := context.WithoutCancel(ctx)
	results := e.b.submit(actx, subs)
	wait := 100 * time.Millisecond
	for {
		var again []int
		for i := range results {
			if results[i].Status == 503 {
				again = append(again, i)
			}
		}
		if len(again) == 0 {
			return results, true
		}
		e.b.log.Warn().Int("messages", len(again)).Str("code", results[again[0]].Error.Code).
			Dur("retry_in", wait).Msg("the node cannot take MQTT submissions now; they stay unacknowledged")
		sleep(ctx, wait)
		if ctx.Err() != nil {
			return nil, false
		}
		wait = min(2*wait, 5*time.Second)
		retry := make([]submission, len(again))
		for k, i := range again {
			retry[k] = subs[i]
		}
		for k, r := range e.b.submit(actx, retry) {
			results[again[k]] = r
		}
	}
}

// publish sends with QoS 1 and waits for the broker's PUBACK. While the
// broker is away it fails at once: the callers hold what they publish
// (a cursor, a rule's outbox) and try again, so nothing piles up here.
// respond publishes an answer without waiting for the broker's PUBACK:
// waiting would hold the submissions behind it, and the PUBACK comes on
// the connection whose deliveries those submissions are. Nothing is sent
// while the broker is away.
// respond publishes an answer at QoS 1 and keeps its token: serve
// acknowledges the submissions once the broker has their answers.
func (e *external) respond(topic string, payload, _ []byte) error {
	if !e.c.IsConnectionOpen() {
		if e.answerErr == nil {
			e.answerErr = errNotConnected
		}
		return errNotConnected
	}
	e.answers = append(e.answers, e.c.Publish(topic, 1, false, payload))
	return nil
}

func (e *external) publish(ctx context.Context, topic string, payload []byte, retain bool) error {
	if !e.c.IsConnectionOpen() || !e.listening.Load() {
		return errNotConnected // nor before the node takes submissions there: a device that reads the tips finds it listening
	}
	t := e.c.Publish(topic, 1, retain, payload)
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(publishTimeout):
		return fmt.Errorf("mqtt: publishing to %s: no PUBACK in %v", topic, publishTimeout)
	}
}

func (e *external) close() {
	e.c.Disconnect(250)
}

// tlsConfig is the TLS configuration of cfg's broker, or nil for a plain
// connection with no files given.
func tlsConfig(cfg Config) (*tls.Config, error) {
	if cfg.CAFile == "" && cfg.CertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: mqtt-ca-file: %v", ErrConfig, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: mqtt-ca-file %s: no PEM certificate in it", ErrConfig, cfg.CAFile)
		}
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: mqtt-cert-file, mqtt-key-file: %v", ErrConfig, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
