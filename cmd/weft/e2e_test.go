package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// weftBin is the weft binary the end-to-end tests run, built by TestMain,
// with -race when the tests run with it.
var weftBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weft-e2e")
	if err != nil {
		panic(err)
	}
	weftBin = filepath.Join(dir, "weft")
	args := []string{"build", "-o", weftBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building weft: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running `weft node`.
type proc struct {
	cmd  *exec.Cmd
	url  string
	done chan error

	mu   sync.Mutex    // guards logs and grew
	logs *bytes.Buffer // read it unlocked only once done has a value
	grew chan struct{} // closed, and replaced, when logs grow
}

// logText returns the node's log so far.
func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// waitLog waits until the node's log, past offset from, has a line
// containing substr, and returns the offset after that line. It fails the
// test if the process ends first or after a minute.
func (p *proc) waitLog(t *testing.T, substr string, from int) int {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		p.mu.Lock()
		logs, grew := p.logs.String(), p.grew
		p.mu.Unlock()
		if i := strings.Index(logs[from:], substr); i >= 0 {
			end := from + i + len(substr)
			if nl := strings.IndexByte(logs[end:], '\n'); nl >= 0 {
				end += nl + 1
			}
			return end
		}
		select {
		case <-grew:
		case err := <-p.done:
			p.done <- err
			t.Fatalf("the node exited (%v) before logging %q:\n%s", err, substr, logs)
		case <-timeout:
			t.Fatalf("the node did not log %q in a minute:\n%s", substr, logs)
		}
	}
}

// startNode runs `weft node` on dataDir with an API on a free port and
// returns once the API answers.
func startNode(t *testing.T, dataDir string, args ...string) *proc {
	t.Helper()
	return startNodeBin(t, weftBin, dataDir, args...)
}

// plainBin is a weft binary built without the race detector, which
// multiplies a program's memory several times: for the tests that measure
// the node's memory.
var plainBin struct {
	once sync.Once
	path string
	err  error
}

// plainWeftBin returns plainBin, building it on the first call.
func plainWeftBin(t *testing.T) string {
	t.Helper()
	if !raceEnabled {
		return weftBin
	}
	plainBin.once.Do(func() {
		plainBin.path = weftBin + "-norace"
		out, err := exec.Command("go", "build", "-o", plainBin.path, ".").CombinedOutput()
		if err != nil {
			plainBin.err = fmt.Errorf("building weft without -race: %v\n%s", err, out)
		}
	})
	if plainBin.err != nil {
		t.Fatal(plainBin.err)
	}
	return plainBin.path
}

// startNodeBin starts the weft binary bin as a node; see startNode.
func startNodeBin(t *testing.T, bin, dataDir string, args ...string) *proc {
	t.Helper()
	args = append([]string{"node", "--data-dir", dataDir, "--api-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--network", "e2e"}, args...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &bytes.Buffer{}, done: make(chan error, 1), grew: make(chan struct{})}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.logs.Write(line)
			p.logs.WriteByte('\n')
			close(p.grew)
			p.grew = make(chan struct{})
			p.mu.Unlock()
			var rec struct{ API string }
			if json.Unmarshal(line, &rec) == nil && rec.API != "" {
				select {
				case urlc <- rec.API:
				default:
				}
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case p.url = <-urlc:
	case err := <-p.done:
		t.Fatalf("node exited at start (%v):\n%s", err, p.logs)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-p.done
		t.Fatalf("node did not start:\n%s", p.logs)
	}
	t.Cleanup(func() { p.kill(syscall.SIGKILL) })
	return p
}

func (p *proc) kill(sig syscall.Signal) error {
	if p.cmd.ProcessState != nil {
		return nil
	}
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		return fmt.Errorf("node did not stop on %v", sig)
	}
}

// rawMessage builds a signed, solved message with tips from the node, over
// plain HTTP: the way a device in another language would.
func rawMessage(t *testing.T, url string, key ed25519.PrivateKey, seq uint64, payload []byte) *dag.Message {
	t.Helper()
	m, err := buildRaw(url, key, seq, payload)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func buildRaw(url string, key ed25519.PrivateKey, seq uint64, payload []byte) (*dag.Message, error) {
	resp, err := http.Get(fmt.Sprintf("%s/api/v1/tips?size=%d", url, len(payload)))
	if err != nil {
		return nil, err
	}
	var tips struct {
		Parents      []string `json:"parents"`
		MinTimestamp int64    `json:"min_timestamp"`
		Difficulty   int      `json:"difficulty"`
		NetworkID    string   `json:"network_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tips)
	resp.Body.Close()
	if err != nil || len(tips.Parents) != 2 {
		return nil, fmt.Errorf("tips: %v", err)
	}
	netID, _ := hex.DecodeString(tips.NetworkID)
	m := &dag.Message{Version: dag.Version, Network: dag.NetworkID(binary.BigEndian.Uint64(netID)), Seq: seq,
		Timestamp: max(time.Now().UnixNano(), tips.MinTimestamp), Payload: payload}
	for i, s := range tips.Parents {
		id, err := dag.ParseID(s)
		if err != nil {
			return nil, fmt.Errorf("tips: %v", err)
		}
		m.Parents[i] = id
	}
	m.Sign(key)
	n, err := pow.Solve(context.Background(), m.Bytes(), tips.Difficulty, 1)
	m.SetNonce(n)
	return m, err
}

func postRaw(url string, b []byte) (int, error) {
	resp, err := http.Post(url+"/api/v1/messages", "application/octet-stream", bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	p := startNode(t, t.TempDir(), "--pow-base", "8")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := client.New(p.url)
	_, key, _ := ed25519.GenerateKey(nil)
	dev := &client.Device{Key: key, Client: c}
	var ids []dag.ID
	for i := 0; i < 10; i++ {
		id, err := dev.Send(ctx, []byte(fmt.Sprintf(`{"reading":%d}`, i)))
		if err != nil {
			t.Fatalf("client send %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	_, rawKey, _ := ed25519.GenerateKey(nil)
	for i := 0; i < 10; i++ {
		m := rawMessage(t, p.url, rawKey, uint64(i+1), []byte("raw"))
		st, err := postRaw(p.url, m.Bytes())
		if err != nil || st != http.StatusCreated {
			t.Fatalf("raw post %d: %d %v", i, st, err)
		}
		ids = append(ids, m.ID())
	}
	for _, id := range ids {
		mi, err := c.WaitConfirmed(ctx, id)
		if err != nil {
			t.Fatalf("waiting for %s: %v", id, err)
		}
		if !mi.Confirmed {
			t.Fatalf("%s not confirmed", id)
		}
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Confirmed < uint64(len(ids)) {
		t.Fatalf("info: %+v", info)
	}
	if err := p.kill(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.logs)
	}
	if !strings.Contains(p.logs.String(), `"stopped"`) {
		t.Fatalf("no clean stop in the logs:\n%s", p.logs)
	}
}

// TestCrashSafety kills the node with SIGKILL at random moments while a
// client submits continuously, restarts it, and checks that every message
// acknowledged with 201 is there and the store opens cleanly.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 3))
	dir := t.TempDir()
	_, key, _ := ed25519.GenerateKey(nil)
	var acked []dag.ID
	seq := uint64(0)
	for round := 0; round < 10; round++ {
		p := startNode(t, dir, "--pow-base", "0")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					mu.Lock()
					seq++
					s := seq
					mu.Unlock()
					m, err := buildRaw(p.url, key, s, []byte("crash"))
					if err != nil {
						return // the node is gone
					}
					st, err := postRaw(p.url, m.Bytes())
					if err != nil {
						return
					}
					if st == http.StatusCreated {
						mu.Lock()
						acked = append(acked, m.ID())
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(100+r.IntN(700)) * time.Millisecond)
		p.kill(syscall.SIGKILL)
		close(stop)
		wg.Wait()
	}
	p := startNode(t, dir, "--pow-base", "0")
	c := client.New(p.url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, id := range acked {
		if _, err := c.Get(ctx, id); err != nil {
			t.Fatalf("acknowledged message %s lost: %v", id, err)
		}
	}
	if len(acked) < 50 {
		t.Fatalf("only %d messages acknowledged over 10 rounds: the test did not test much", len(acked))
	}
	t.Logf("%d acknowledged messages survived 10 SIGKILLs", len(acked))
	// The node still takes messages.
	m := rawMessage(t, p.url, key, seq+1000, []byte("after"))
	if st, err := postRaw(p.url, m.Bytes()); err != nil || st != http.StatusCreated {
		t.Fatalf("after the crashes: %d %v", st, err)
	}
}
