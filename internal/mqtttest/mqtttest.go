// Package mqtttest runs a real MQTT broker, Mosquitto, for tests.
package mqtttest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/weftnet/weft/internal/loopback"
)

// Broker is a Mosquitto broker run by a test.
type Broker struct {
	t         testing.TB
	bin, conf string
	Addr      string
	cmd       *exec.Cmd
	out       bytes.Buffer
}

// Mosquitto runs a Mosquitto broker on a free port until the test ends;
// conf are more lines of its configuration.
// The test is skipped, saying why, where Mosquitto is not installed
// (.ci/run installs it).
func Mosquitto(t testing.TB, conf ...string) *Broker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, err2 := os.Stat(p); err2 == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("no mosquitto here: the external broker is not tested (.ci/run installs mosquitto)")
	}
	addrs, err := loopback.FreeAddrs("tcp", 1)
	if err != nil {
		t.Fatal(err)
	}
	m := &Broker{t: t, bin: bin, Addr: addrs[0], conf: filepath.Join(t.TempDir(), "mosquitto.conf")}
	port := m.Addr[strings.LastIndexByte(m.Addr, ':')+1:]
	if err := os.WriteFile(m.conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous true\n"+strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(func() {
		m.Kill()
		if t.Failed() {
			t.Logf("mosquitto:\n%s", m.out.String())
		}
	})
	return m
}

// Start starts the broker and waits until it takes connections.
func (m *Broker) Start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = &m.out, &m.out
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + m.Addr).SetClientID("probe"))
	for deadline := time.Now().Add(10 * time.Second); ; {
		if tok := c.Connect(); tok.WaitTimeout(time.Second) && tok.Error() == nil {
			c.Disconnect(0)
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto never listened on %s:\n%s", m.Addr, m.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the broker at once; it keeps nothing (no persistence).
func (m *Broker) Kill() {
	if m.cmd != nil {
		m.cmd.Process.Kill()
		m.cmd.Wait()
		m.cmd = nil
	}
}
