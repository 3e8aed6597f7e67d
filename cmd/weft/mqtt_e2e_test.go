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
// docs/MQTT.md shows, submits through the node's embedded broker; the
// answer comes on the issuer's result topic, and the message is
// confirmed.
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
	p := startNode(t, t.TempDir(), "--mqtt-listen", "127.0.0.1:0")
	m := brokerOn.FindStringSubmatch(p.logText())
	if m == nil {
		p.waitLog(t, "embedded MQTT broker on", 0)
		m = brokerOn.FindStringSubmatch(p.logText())
	}
	if m == nil {
		t.Fatalf("no broker address in the log:\n%s", p.logText())
	}
	port := m[1][strings.LastIndexByte(m[1], ':')+1:]
	key, pub := newKey(t)

	// The retained tips, as a device reads them: one mosquitto_sub -C 1.
	out, err := exec.Command("mosquitto_sub", "-p", port, "-t", "weft/v1/e2e/tips", "-C", "1", "-W", "10").Output()
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
		"--pow-base", fmt.Sprint(tips.PoWBase), "--payload", `{"t":21.5}`)
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
		t.Fatalf("no answer on the result topic: %v", err)
	}
	var r wire.BatchResult
	if err := json.Unmarshal(ans.Bytes(), &r); err != nil || r.Status != 201 || r.ID != id.String() {
		t.Fatalf("answer %q (%v), want 201 for %s", ans.Bytes(), err, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if mi, err := client.New(p.url).WaitConfirmed(ctx, id); err != nil || string(mi.Payload) != `{"t":21.5}` {
		t.Fatalf("waiting for %s: %+v, %v", id, mi, err)
	}
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
