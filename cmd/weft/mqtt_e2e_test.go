package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/mqtttest"
	"github.com/weftnet/weft/internal/testseed"
	"github.com/weftnet/weft/pow"
)

var brokerOn = regexp.MustCompile(`"listen":"([0-9.]+:[0-9]+)".*embedded MQTT broker on`)

// TestMQTTCDevice: the C library's example, piped to mosquitto_pub as
// docs/MQTT.md shows, submits through a real Mosquitto broker and through
// the node's embedded one; the answer comes on the issuer's result topic,
// and the message is confirmed. The device reads the retained tips alone.
func TestMQTTCDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	for _, tool := range []string{"mosquitto_pub", "mosquitto_sub"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s here: MQTT devices are not tested (.ci/run installs mosquitto-clients)", tool)
		}
	}
	msgBin := buildCDevice(t)
	t.Run("embedded", func(t *testing.T) {
		p := startNode(t, t.TempDir(), "--mqtt-listen", "127.0.0.1:0")
		cDeviceOverMQTT(t, msgBin, p, embeddedPort(t, p))
	})
	t.Run("mosquitto", func(t *testing.T) {
		broker := mqtttest.Mosquitto(t)
		p := startNode(t, t.TempDir(), "--mqtt-broker", "tcp://"+broker.Addr)
		cDeviceOverMQTT(t, msgBin, p, broker.Addr[strings.LastIndexByte(broker.Addr, ':')+1:])
	})
}

// embeddedPort is the port of p's embedded broker, from its log.
func embeddedPort(t *testing.T, p *proc) string {
	t.Helper()
	p.waitLog(t, "embedded MQTT broker on", 0)
	m := brokerOn.FindStringSubmatch(p.logText())
	if m == nil {
		t.Fatalf("no broker address in the log:\n%s", p.logText())
	}
	return m[1][strings.LastIndexByte(m[1], ':')+1:]
}

// cDeviceOverMQTT submits two messages built by weft-msg through the
// broker on port and checks their answers and their confirmation.
func cDeviceOverMQTT(t *testing.T, msgBin string, p *proc, port string) {
	key, pub := newKey(t)
	c := client.New(p.url)
	for i, payload := range []string{`{"t":21.5}`, `{"t":22.0}`} {
		// The retained tips, as a device reads them: one mosquitto_sub -C 1.
		out, err := exec.Command("mosquitto_sub", "-p", port, "-t", "weft/v1/e2e/tips", "-C", "1", "-W", "20").Output()
		if err != nil {
			t.Fatalf("mosquitto_sub tips: %v", err)
		}
		var tips wire.Tips
		if err := json.Unmarshal(out, &tips); err != nil || len(tips.Parents) != 2 {
			t.Fatalf("tips %q: %v", out, err)
		}
		answers := exec.Command("mosquitto_sub", "-p", port, "-t", "weft/v1/e2e/result/"+pub.String(), "-C", "1", "-W", "20")
		var ans bytes.Buffer
		answers.Stdout = &ans
		if err := answers.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // mosquitto_sub subscribes
		script := `"$0" "$@" | mosquitto_pub -p ` + port + ` -t weft/v1/e2e/submit -q 1 -s`
		cmd := exec.Command("sh", "-c", script, msgBin, "--key", key, "--network", "e2e",
			"--parents", tips.Parents[0], tips.Parents[1], "--min-timestamp", fmt.Sprint(tips.MinTimestamp),
			"--pow-base", fmt.Sprint(tips.PoWBase), "--payload", payload)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("weft-msg | mosquitto_pub: %v\n%s", err, stderr.Bytes())
		}
		id, err := dag.ParseID(strings.TrimSpace(stderr.String()))
		if err != nil {
			t.Fatalf("weft-msg's stderr %q: %v", stderr.Bytes(), err)
		}
		if err := answers.Wait(); err != nil {
			t.Fatalf("message %d: no answer on the result topic: %v", i, err)
		}
		var r wire.BatchResult
		if err := json.Unmarshal(ans.Bytes(), &r); err != nil || r.Status != 201 || r.ID != id.String() {
			t.Fatalf("message %d: answer %q (%v), want 201 for %s", i, ans.Bytes(), err, id)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		mi, err := c.WaitConfirmed(ctx, id)
		cancel()
		if err != nil || string(mi.Payload) != payload {
			t.Fatalf("waiting for %s: %+v, %v", id, mi, err)
		}
	}
}

// TestMQTTCodesAsHTTP: bad messages published over MQTT are answered with
// the codes the HTTP API gives the same bytes, none is stored, and the
// node goes on taking good ones.
func TestMQTTCodesAsHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	p := startNode(t, t.TempDir(), "--mqtt-listen", "127.0.0.1:0", "--max-payload", "256")
	port := embeddedPort(t, p)
	dev := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://127.0.0.1:" + port).SetClientID("codes"))
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer dev.Disconnect(100)
	key := ed25519.NewKeyFromSeed(append(make([]byte, 31), 77))
	answers := make(chan wire.BatchResult, 16)
	tok := dev.Subscribe("weft/v1/e2e/result/"+dag.PublicKey(key.Public().(ed25519.PublicKey)).String(), 1, func(_ paho.Client, m paho.Message) {
		var r wire.BatchResult
		json.Unmarshal(m.Payload(), &r)
		answers <- r
	})
	tok.Wait()

	good := rawMessage(t, p.url, key, 1, []byte(`{"ok":1}`))
	badSig := rawMessage(t, p.url, key, 2, []byte(`{"ok":2}`))
	badSig.Signature[5] ^= 1
	noPoW := rawMessage(t, p.url, key, 3, []byte(`{"ok":3}`))
	for n := noPoW.Nonce + 1; ; n++ { // a nonce short of the difficulty
		noPoW.SetNonce(n)
		if id := noPoW.ID(); id[0] != 0 {
			break
		}
	}
	wrongNet := rawMessage(t, p.url, key, 4, []byte(`{"ok":4}`))
	wrongNet.Network ^= 1
	wrongNet.Sign(key)
	big := rawMessage(t, p.url, key, 5, bytes.Repeat([]byte("x"), 300))
	cases := []struct {
		name string
		raw  []byte
	}{
		{"truncated", good.Bytes()[:150]},
		{"bad signature", resolve(t, badSig.AppendEncoding(nil))}, // not Bytes: it caches the signed encoding
		{"insufficient proof of work", noPoW.Bytes()},
		{"wrong network", wrongNet.Bytes()},
		{"payload over max-payload", big.Bytes()},
	}
	for _, c := range cases {
		resp, err := http.Post(p.url+"/api/v1/messages", "application/octet-stream", bytes.NewReader(c.raw))
		if err != nil {
			t.Fatal(err)
		}
		var body wire.ErrorBody
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if tok := dev.Publish("weft/v1/e2e/submit", 1, false, c.raw); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: no PUBACK: %v", c.name, tok.Error())
		}
		select {
		case r := <-answers:
			if r.Error == nil || r.Status != resp.StatusCode || r.Error.Code != body.Error.Code {
				t.Errorf("%s: MQTT answered %+v, HTTP %d %s", c.name, r, resp.StatusCode, body.Error.Code)
			} else {
				t.Logf("%s: %d %s over both", c.name, r.Status, r.Error.Code)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no answer", c.name)
		}
	}
	if tok := dev.Publish("weft/v1/e2e/submit", 1, false, good.Bytes()); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if r := <-answers; r.Status != 201 || r.ID != good.ID().String() {
		t.Fatalf("the good message after the bad ones: %+v", r)
	}
}

// resolve does the proof of work again for raw at the default base, so
// that a message with a broken signature gets as far as its signature.
func resolve(t *testing.T, raw []byte) []byte {
	t.Helper()
	n, err := pow.Solve(context.Background(), raw, pow.Difficulty(len(raw), pow.DefaultBase), 1)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint64(raw[len(raw)-pow.NonceSize:], n)
	return raw
}

// TestMQTTAcrossKills: a device publishes through a real Mosquitto broker
// while the node behind it is SIGKILLed and restarted; every message the
// broker acknowledged to the device ends up stored, because the node
// acknowledges to the broker only after its commit, and the broker keeps
// the rest in the node's session. The device builds on the retained tips
// alone: it makes no request to the node.
func TestMQTTAcrossKills(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 0))
	broker := mqtttest.Mosquitto(t)
	dir := t.TempDir()
	args := []string{"--pow-base", "4", "--mqtt-broker", "tcp://" + broker.Addr, "--mqtt-client-id", "weft-e2e"}
	p := startNode(t, dir, args...)

	dev := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + broker.Addr).SetClientID("device").
		SetAutoReconnect(false))
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer dev.Disconnect(100)
	var (
		mu   sync.Mutex
		tips wire.Tips
	)
	got := make(chan struct{}, 1)
	dev.Subscribe("weft/v1/e2e/tips", 1, func(_ paho.Client, m paho.Message) {
		var fresh wire.Tips // not into tips: its Parents are shared with build's copies
		if json.Unmarshal(m.Payload(), &fresh) != nil {
			return
		}
		mu.Lock()
		tips = fresh
		mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	}).Wait()
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no retained tips")
	}

	key := ed25519.NewKeyFromSeed(append(make([]byte, 31), 42))
	// The node's answers: a refusal is its acknowledgement too.
	refused := map[string]string{} // id: code
	dev.Subscribe("weft/v1/e2e/result/"+dag.PublicKey(key.Public().(ed25519.PublicKey)).String(), 1, func(_ paho.Client, m paho.Message) {
		var r wire.BatchResult
		if json.Unmarshal(m.Payload(), &r) == nil && r.Error != nil && r.Error.Code != wire.CodeDuplicate {
			mu.Lock()
			refused[r.ID] = r.Error.Code
			mu.Unlock()
		}
	}).Wait()
	build := func(seq uint64) *dag.Message {
		mu.Lock()
		tp := tips
		mu.Unlock()
		netID, _ := hex.DecodeString(tp.NetworkID)
		m := &dag.Message{Version: dag.Version, Network: dag.NetworkID(binary.BigEndian.Uint64(netID)), Seq: seq,
			Timestamp: max(time.Now().UnixNano(), tp.MinTimestamp), Payload: []byte(fmt.Sprintf(`{"seq":%d}`, seq))}
		for i, s := range tp.Parents {
			m.Parents[i], _ = dag.ParseID(s)
		}
		m.Sign(key)
		n, err := pow.Solve(context.Background(), m.Bytes(), pow.Difficulty(len(m.Bytes()), tp.PoWBase), 1)
		if err != nil {
			t.Error(err)
		}
		m.SetNonce(n)
		return m
	}
	var (
		acked []dag.ID
		seq   uint64
	)
	publish := func() bool {
		seq++
		m := build(seq)
		if tok := dev.Publish("weft/v1/e2e/submit", 1, false, m.Bytes()); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Errorf("the broker did not acknowledge message %d: %v", seq, tok.Error())
			return false
		}
		acked = append(acked, m.ID()) // the broker's PUBACK
		return true
	}
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if !publish() {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for round := range 3 {
		time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
		if err := p.kill(syscall.SIGKILL); err == nil {
			t.Fatalf("round %d: the node exited 0 on SIGKILL", round)
		}
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond) // the broker holds what comes meanwhile
		p = startNode(t, dir, args...)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-sent

	// Every message the broker acknowledged is stored or was refused, and
	// the device hears which. After the node's reconnection the broker may
	// deliver what it held in another order (Mosquitto resends the
	// messages that were in flight after newer ones): a message that comes
	// after a newer one of its issuer is refused stale_sequence, and the
	// device sends that reading again, as docs/MQTT.md asks.
	c := client.New(p.url)
	deadline := time.Now().Add(time.Minute)
	var lost, again []dag.ID
	stored := func(id dag.ID) bool { _, err := c.Get(context.Background(), id); return err == nil }
	for i, id := range acked {
		for !stored(id) {
			mu.Lock()
			code, ok := refused[id.String()]
			mu.Unlock()
			if ok {
				if code != wire.CodeStaleSequence {
					t.Errorf("%s refused %s", id, code)
				}
				again = append(again, id)
				break
			}
			if time.Now().After(deadline) {
				lost = append(lost, id)
				t.Logf("message %d of %d, %s: neither stored nor refused", i+1, len(acked), id)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := len(acked)
	for range again {
		if !publish() {
			break
		}
	}
	for _, id := range acked[first:] {
		for !stored(id) {
			if time.Now().After(deadline) {
				lost = append(lost, id)
				t.Logf("%s, sent again: not stored", id)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("%d messages acknowledged by the broker across 3 SIGKILLs of the node; %d refused stale_sequence after a reconnection and sent again", first, len(again))
	if len(lost) > 0 {
		t.Logf("the node's log:\n%s", p.logText())
	}
	if len(lost) > 0 || first == 0 {
		t.Fatalf("%d of %d messages the broker acknowledged were neither stored nor refused", len(lost), len(acked))
	}
}
