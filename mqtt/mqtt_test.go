package mqtt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/mqtttest"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/rules"
	"github.com/weftnet/weft/storage"
)

const network = "mqtt-test"

func key(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed)
}

// startNode runs a node (no proof of work, no fsync) until the test ends,
// with the bridge's rule action installed; mod may change its config.
func startNode(t testing.TB, b *Bridge, mod func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.Config{DataDir: t.TempDir(), Identity: key(1), Network: network, NoPoW: true,
		IssueInterval: 5 * time.Millisecond, Store: storage.Config{NoSync: true}}
	cfg.RuleEngine.Kinds = map[string]rules.NewDeliverer{"mqtt": b.Deliverer}
	if mod != nil {
		mod(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

// bridge makes a bridge for cfg (the test network filled in).
func bridge(t *testing.T, cfg Config) *Bridge {
	t.Helper()
	cfg.Network = network
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// start starts b with n; it is closed before the node stops.
func start(t *testing.T, b *Bridge, n *node.Node) {
	t.Helper()
	if err := b.Start(n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
}

// message builds a signed message of k on n's tips.
func message(n *node.Node, k ed25519.PrivateKey, seq uint64, payload string) *dag.Message {
	tips := n.Tips(len(payload))
	m := &dag.Message{Version: dag.Version, Network: n.Params().Network, Parents: tips.Parents, Seq: seq,
		Timestamp: max(time.Now().UnixNano(), tips.MinTimestamp), Payload: []byte(payload)}
	m.Sign(k)
	return m
}

// device connects an MQTT 3.1.1 client (paho) to addr.
func device(t *testing.T, addr, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connecting to %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// inbox collects what a client receives on a filter.
type inbox struct {
	mu   sync.Mutex
	msgs []paho.Message
	more chan struct{}
}

func subscribe(t *testing.T, c paho.Client, filter string) *inbox {
	t.Helper()
	in := &inbox{more: make(chan struct{}, 1)}
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		in.mu.Lock()
		in.msgs = append(in.msgs, m)
		in.mu.Unlock()
		select {
		case in.more <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribing to %s: %v", filter, tok.Error())
	}
	return in
}

// wait returns the first k messages, or fails the test after d.
func (in *inbox) wait(t *testing.T, k int, d time.Duration) []paho.Message {
	t.Helper()
	deadline := time.After(d)
	for {
		in.mu.Lock()
		if len(in.msgs) >= k {
			out := append([]paho.Message(nil), in.msgs[:k]...)
			in.mu.Unlock()
			return out
		}
		got := len(in.msgs)
		in.mu.Unlock()
		select {
		case <-in.more:
		case <-deadline:
			t.Fatalf("%d messages after %v, want %d", got, d, k)
		}
	}
}

func result(t *testing.T, m paho.Message) wire.BatchResult {
	t.Helper()
	var r wire.BatchResult
	if err := json.Unmarshal(m.Payload(), &r); err != nil {
		t.Fatalf("result %q: %v", m.Payload(), err)
	}
	return r
}

// publish publishes with QoS 1 and waits for the PUBACK.
func publish(t *testing.T, c paho.Client, topic string, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publishing to %s: no PUBACK: %v", topic, tok.Error())
	}
}

// TestEmbeddedSubmit: through the embedded broker, a device's message is
// stored before its PUBACK, and answered on the issuer's result topic with
// the API's outcomes: 201, 409 duplicate, 422 bad_signature (not stored).
// The retained tips are the node's, and a device cannot overwrite them.
func TestEmbeddedSubmit(t *testing.T) {
	b := bridge(t, Config{Listen: "127.0.0.1:0"})
	n := startNode(t, b, nil)
	start(t, b, n)
	topics := TopicsOf(network)
	k := key(7)
	issuer := dag.PublicKey(k.Public().(ed25519.PublicKey))
	c := device(t, b.Addr(), "dev-7")
	results := subscribe(t, c, topics.Result+issuer.String())

	m := message(n, k, 1, `{"t":21.5}`)
	publish(t, c, topics.Submit, m.Bytes())
	// The PUBACK came after the commit: the node has the message now.
	if mi, err := n.Message(context.Background(), m.ID()); err != nil || mi.Pending {
		t.Fatalf("after the PUBACK: %+v, %v; want the message stored", mi, err)
	}
	publish(t, c, topics.Submit, m.Bytes())
	forged := message(n, k, 2, `{"t":99}`)
	forged.Signature[0] ^= 1
	publish(t, c, topics.Submit, forged.Bytes())

	rs := results.wait(t, 3, 10*time.Second)
	want := []struct {
		status int
		code   string
		id     dag.ID
	}{{201, "", m.ID()}, {409, wire.CodeDuplicate, m.ID()}, {422, wire.CodeBadSignature, forged.ID()}}
	for i, w := range want {
		r := result(t, rs[i])
		code := ""
		if r.Error != nil {
			code = r.Error.Code
		}
		if r.Status != w.status || code != w.code || r.ID != w.id.String() {
			t.Errorf("result %d: %+v, want status %d code %q id %s", i, r, w.status, w.code, w.id)
		}
	}
	if _, err := n.Message(context.Background(), forged.ID()); err == nil {
		t.Errorf("the forged message was stored")
	}

	// A client holds at most maxSubscriptions filters (it has one).
	for i := 1; i <= maxSubscriptions; i++ {
		tok := c.Subscribe(fmt.Sprintf("dev/7/f%d", i), 0, func(paho.Client, paho.Message) {})
		if !tok.WaitTimeout(5 * time.Second) {
			t.Fatal("no SUBACK")
		}
		code := tok.(*paho.SubscribeToken).Result()[fmt.Sprintf("dev/7/f%d", i)]
		if refused := code == 0x80; refused != (i == maxSubscriptions) {
			t.Fatalf("filter %d: SUBACK code %#x", i+1, code)
		}
	}

	// The tips: retained, the node's, not a device's. A 3.1.1 client that
	// publishes on them is disconnected (its protocol has no refusal).
	forger := device(t, b.Addr(), "dev-forger")
	if tok := forger.Publish(topics.Tips, 1, true, []byte(`{"parents":["forged"]}`)); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		t.Fatal("a device's publish on the tips topic was acknowledged")
	}
	late := device(t, b.Addr(), "dev-late")
	tips := subscribe(t, late, topics.Tips).wait(t, 1, 5*time.Second)
	var doc wire.Tips
	if err := json.Unmarshal(tips[0].Payload(), &doc); err != nil || !tips[0].Retained() {
		t.Fatalf("tips %q (retained %v): %v", tips[0].Payload(), tips[0].Retained(), err)
	}
	if len(doc.Parents) != 2 || doc.Network != network || doc.PoWBase != n.Params().PoWBase || doc.MaxPayload != n.Params().MaxPayload {
		t.Fatalf("tips %+v", doc)
	}
	for _, p := range doc.Parents {
		id, err := dag.ParseID(p)
		if err != nil {
			t.Fatalf("tips parent %q: %v", p, err)
		}
		if _, err := n.Message(context.Background(), id); err != nil {
			t.Fatalf("tips parent %s: %v", id, err)
		}
	}
}

// TestExternalBroker: with a real Mosquitto between device and node,
// messages published while the node is away are taken when it comes back
// (its session is kept), the broker's restart is survived, and every
// message the device published is stored and answered.
func TestExternalBroker(t *testing.T) {
	broker := mqtttest.Mosquitto(t)
	addr := broker.Addr
	topics := TopicsOf(network)
	b := bridge(t, Config{Broker: "tcp://" + addr, ClientID: "weft-test"})
	n := startNode(t, b, nil)
	start(t, b, n)
	k := key(8)
	issuer := dag.PublicKey(k.Public().(ed25519.PublicKey))
	c := device(t, addr, "dev-8")
	results := subscribe(t, c, topics.Result+issuer.String())
	waitSubscribed(t, c, topics.Submit, b)

	var ids []dag.ID
	seq := uint64(0)
	send := func(k2 int) {
		for range k2 {
			seq++
			m := message(n, k, seq, fmt.Sprintf(`{"seq":%d}`, seq))
			ids = append(ids, m.ID())
			publish(t, c, topics.Submit, m.Bytes())
		}
	}
	send(20)
	results.wait(t, 20, 10*time.Second)

	// The node goes away; the broker keeps its session and what comes.
	b.Close()
	send(30)
	b2 := bridge(t, Config{Broker: "tcp://" + addr, ClientID: "weft-test"})
	start(t, b2, n)
	// Every message is answered 201 once. A submission whose answer the
	// broker had not acknowledged when the first bridge closed is left
	// unacknowledged: delivered again, it is answered again, 409
	// duplicate.
	created := map[string]bool{}
	for deadline := time.Now().Add(20 * time.Second); len(created) < 50; {
		results.mu.Lock()
		rs := slices.Clone(results.msgs)
		results.mu.Unlock()
		for i, m := range rs {
			switch r := result(t, m); {
			case r.Status == 201 && !created[r.ID]:
				created[r.ID] = true
			case r.Status == 409 && r.Error != nil && r.Error.Code == wire.CodeDuplicate && created[r.ID]:
			default:
				t.Fatalf("result %d: %+v", i, r)
			}
		}
		if len(created) < 50 {
			if time.Now().After(deadline) {
				t.Fatalf("%d of 50 messages answered 201", len(created))
			}
			created = map[string]bool{}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i, id := range ids {
		if _, err := n.Message(context.Background(), id); err != nil {
			t.Fatalf("message %d (%s), published while the node was away: %v", i, id, err)
		}
	}

	// The broker restarts with nothing: the bridge reconnects, subscribes
	// again, and takes the device's next messages.
	broker.Kill()
	broker.Start()
	c = device(t, addr, "dev-8")
	results = subscribe(t, c, topics.Result+issuer.String())
	waitSubscribed(t, c, topics.Submit, b2)
	send(10)
	for i, m := range results.wait(t, 10, 20*time.Second) {
		if r := result(t, m); r.Status != 201 || r.ID != ids[50+i].String() {
			t.Fatalf("after the broker's restart, result %d: %+v", i, r)
		}
	}
}

// waitSubscribed waits until the bridge's subscription to the submit
// topic is in place at the broker: a probe published there is answered.
func waitSubscribed(t *testing.T, c paho.Client, topic string, b *Bridge) {
	t.Helper()
	probe := bytes.Repeat([]byte{0}, issuerOffset+32) // answered, on the all-zero issuer's topic
	in := subscribe(t, c, b.topics.Result+dag.PublicKey{}.String())
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		publish(t, c, topic, probe)
		select {
		case <-in.more:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatal("the bridge never subscribed at the broker")
}

// TestMQTT5Response: an MQTT 5 device (Mosquitto's own clients) gets its
// answer on its response topic with its correlation data, and a refusal
// in the PUBACK's reason code, with the API's code as the reason string.
func TestMQTT5Response(t *testing.T) {
	for _, tool := range []string{"mosquitto_pub", "mosquitto_sub"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s here: MQTT 5 is not tested (.ci/run installs mosquitto-clients)", tool)
		}
	}
	b := bridge(t, Config{Listen: "127.0.0.1:0"})
	n := startNode(t, b, nil)
	start(t, b, n)
	addr := b.Addr()
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	lines := mosquittoSub(t, addr, port, "dev/7/answers")

	dir := t.TempDir()
	good := message(n, key(7), 1, `{"t":4.5}`)
	goodFile := filepath.Join(dir, "good.bin")
	shortFile := filepath.Join(dir, "short.bin")
	os.WriteFile(goodFile, good.Bytes(), 0o644)
	os.WriteFile(shortFile, good.Bytes()[:150], 0o644)
	// A publish on the node's own topics is refused with 0x87 (135).
	out, _ := exec.Command("mosquitto_pub", "-d", "-V", "5", "-p", port, "-q", "1", "-t", TopicsOf(network).Tips, "-m", "forged").CombinedOutput()
	if !bytes.Contains(out, []byte("received PUBACK (Mid: 1, RC:135)")) {
		t.Fatalf("mosquitto_pub on the tips topic: want a PUBACK with RC:135:\n%s", out)
	}
	for _, c := range []struct {
		file, corr string
		puback     string // in mosquitto_pub -d's output
		answer     string
	}{
		{goodFile, "c-1", "RC:0)", fmt.Sprintf(`c-1 {"id":"%s","status":201}`, good.ID())},
		{shortFile, "c-2", "RC:153)", `c-2 {"status":400,"error":{"code":"malformed","message":"dag: malformed message: 150 bytes`},
	} {
		out, _ := exec.Command("mosquitto_pub", "-d", "-V", "5", "-p", port, "-q", "1", "-t", TopicsOf(network).Submit,
			"-f", c.file, "-D", "publish", "response-topic", "dev/7/answers", "-D", "publish", "correlation-data", c.corr).CombinedOutput()
		if !bytes.Contains(out, []byte("received PUBACK (Mid: 1, "+c.puback)) {
			t.Fatalf("mosquitto_pub %s: want a PUBACK with %s:\n%s", c.file, c.puback, out)
		}
		select {
		case l := <-lines:
			if !strings.HasPrefix(l, c.answer) {
				t.Fatalf("answer %q, want %q...", l, c.answer)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no answer on the response topic for %s", c.file)
		}
	}
}

// mosquittoSub runs mosquitto_sub (MQTT 5) on topic until the test ends
// and returns its lines: the correlation data, a space, the payload. It
// returns once the subscription is in place (a probe came through).
func mosquittoSub(t *testing.T, addr, port, topic string) <-chan string {
	t.Helper()
	cmd := exec.Command("mosquitto_sub", "-V", "5", "-p", port, "-t", topic, "-F", "%D %p")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		buf := make([]byte, 1<<16)
		var acc []byte
		for {
			k, err := stdout.Read(buf)
			acc = append(acc, buf[:k]...)
			for {
				i := bytes.IndexByte(acc, '\n')
				if i < 0 {
					break
				}
				lines <- string(acc[:i])
				acc = acc[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	probe := device(t, addr, "probe")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		publish(t, probe, topic, []byte("probe"))
		select {
		case l := <-lines:
			if strings.HasSuffix(l, "probe") {
				return lines
			}
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatal("mosquitto_sub never subscribed")
	return nil
}

// TestConfirmedAndRules: with the confirmed topic on, a confirmed reading
// reaches confirmed/<issuer> with its payload, and a rule with an mqtt
// action publishes its match where the rule says.
func TestConfirmedAndRules(t *testing.T) {
	b := bridge(t, Config{Listen: "127.0.0.1:0", Confirmed: true})
	n := startNode(t, b, func(cfg *node.Config) {
		cfg.Rules = []rules.Rule{{Name: "hot", Condition: `payload.t > 8.0`, Action: rules.Action{Kind: "mqtt", Topic: "plant/alerts"}}}
	})
	start(t, b, n)
	k := key(9)
	issuer := dag.PublicKey(k.Public().(ed25519.PublicKey))
	c := device(t, b.Addr(), "dev-9")
	confirmed := subscribe(t, c, TopicsOf(network).Confirmed+issuer.String())
	alerts := subscribe(t, c, "plant/alerts")
	cold := message(n, k, 1, `{"t":4.0}`)
	publish(t, c, TopicsOf(network).Submit, cold.Bytes())
	hot := message(n, k, 2, `{"t":9.5}`)
	publish(t, c, TopicsOf(network).Submit, hot.Bytes())

	for i, m := range confirmed.wait(t, 2, 20*time.Second) {
		var ev struct {
			ID      string          `json:"id"`
			Issuer  string          `json:"issuer"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(m.Payload(), &ev); err != nil {
			t.Fatalf("confirmed %q: %v", m.Payload(), err)
		}
		want := []*dag.Message{cold, hot}[i]
		if ev.ID != want.ID().String() || ev.Issuer != issuer.String() || !bytes.Contains(ev.Payload, want.Payload) {
			t.Fatalf("confirmed %d: %s, want %s with %s", i, m.Payload(), want.ID(), want.Payload)
		}
	}
	a := alerts.wait(t, 1, 20*time.Second)[0]
	match, err := rules.DecodeMatch(a.Payload())
	if err != nil {
		t.Fatalf("alert %q: %v", a.Payload(), err)
	}
	if match.Rule != "hot" || match.Message.ID != hot.ID().String() {
		t.Fatalf("alert %+v, want rule hot on %s", match, hot.ID())
	}
}

// TestConfig refuses what cannot work, with the setting's name.
func TestConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Network: "a/b"}, "network"},
		{Config{Network: "n", Broker: "http://x:1883"}, "mqtt-broker"},
		{Config{Network: "n", Broker: "tcp://"}, "mqtt-broker"},
		{Config{Network: "n", CertFile: "c.pem"}, "mqtt-key-file"},
		{Config{Network: "n", MaxClients: -1}, "mqtt-max-clients"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", c.cfg, err, c.want)
		}
	}
	b, _ := New(Config{Network: "n"})
	if _, err := b.Deliverer(rules.Action{Kind: "mqtt", Topic: "x"}); err == nil {
		t.Error("an mqtt action with no broker was accepted")
	}
	b, _ = New(Config{Network: "n", Listen: "127.0.0.1:0"})
	for _, topic := range []string{"", "a/+", "a/#", "weft/v1/n/tips", strings.Repeat("x", 257)} {
		if _, err := b.Deliverer(rules.Action{Kind: "mqtt", Topic: topic}); err == nil {
			t.Errorf("an mqtt action on topic %q was accepted", topic)
		}
	}
}

// TestEmbeddedBounds: the embedded broker holds at most MaxClients
// sessions, and keeps no client's retained message.
func TestEmbeddedBounds(t *testing.T) {
	b := bridge(t, Config{Listen: "127.0.0.1:0", MaxClients: 2})
	n := startNode(t, b, nil)
	start(t, b, n)
	a := device(t, b.Addr(), "a")
	other := device(t, b.Addr(), "b")
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("c").
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
		c.Disconnect(0)
		t.Fatal("a third session was taken with mqtt-max-clients 2")
	}

	// A retained message of a's is passed on, not kept: a subscriber that
	// comes later gets the probe published after it, and not it.
	if tok := a.Publish("site/door", 1, true, []byte("retained")); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	a.Disconnect(100)
	other.Disconnect(100)
	for deadline := time.Now().Add(5 * time.Second); b.emb.srv.Clients.Len() > 1; { // the node's own client
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions kept after their clean-session clients left", b.emb.srv.Clients.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	late := device(t, b.Addr(), "late")
	in := subscribe(t, late, "site/#")
	probe := device(t, b.Addr(), "probe")
	publish(t, probe, "site/probe", []byte("probe"))
	if m := in.wait(t, 1, 5*time.Second)[0]; m.Topic() != "site/probe" {
		t.Fatalf("the late subscriber got %s %q first: a client's retained message was kept", m.Topic(), m.Payload())
	}
}
