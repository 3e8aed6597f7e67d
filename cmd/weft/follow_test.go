package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// followLines runs weft follow with args until it has written n lines,
// then interrupts it; it returns the lines' confirmations and payloads.
func followLines(t *testing.T, n int, args ...string) (places []uint64, payloads []string) {
	t.Helper()
	cmd := exec.Command(weftBin, append([]string{"follow"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	for len(places) < n {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("follow ended after %d lines: %v\n%s", len(places), cmd.Wait(), stderr.String())
			}
			var e struct {
				Confirmation uint64          `json:"confirmation"`
				Payload      json.RawMessage `json:"payload"`
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			places, payloads = append(places, e.Confirmation), append(payloads, string(e.Payload))
		case <-timeout:
			cmd.Process.Kill()
			for range lines {
			}
			cmd.Wait()
			t.Fatalf("%d of %d lines in 30 s\n%s", len(places), n, stderr.String())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	for range lines { // lines written before the signal took effect
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("follow after SIGINT: %v\n%s", err, stderr.String())
	}
	return places, payloads
}

// TestFollow: weft follow writes the confirmed messages in the node's
// order from --from, and, started again with the same --state file, goes on
// after the last line it wrote, including what was confirmed while it was
// not running.
func TestFollow(t *testing.T) {
	p := startNode(t, t.TempDir(), "--pow-base", "4")
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	seq := uint64(0)
	send := func(k int) {
		for range k {
			seq++
			if st, err := postRaw(p.url, rawMessage(t, p.url, key, seq, []byte(fmt.Sprintf(`{"n":%d}`, seq))).Bytes()); err != nil || st != 201 {
				t.Fatalf("message %d: %d %v", seq, st, err)
			}
		}
	}
	send(10)
	state := filepath.Join(t.TempDir(), "follow.state")
	first, payloads := followLines(t, 5, "--node", p.url, "--from", "0", "--state", state, "--payload", "--sync-every-line")
	for i, pl := range first {
		if pl != uint64(i) {
			t.Fatalf("first run: places %v, want 0, 1, 2...", first)
		}
	}
	if !slices.Contains(payloads, `{"n":1}`) {
		t.Fatalf("no line has the first message's payload as JSON: %v", payloads)
	}
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || saved < first[len(first)-1]+1 {
		t.Fatalf("state %q after places %v", b, first)
	}
	send(5) // confirmed while follow is not running
	deadline := time.Now().Add(30 * time.Second)
	in, err := info(p.url)
	for ; err != nil || in.Unconfirmed > 0 || in.Confirmations < saved+5; in, err = info(p.url) {
		if time.Now().After(deadline) {
			t.Fatalf("not confirmed within 30 s: %+v, %v", in, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	second, _ := followLines(t, int(in.Confirmations-saved), "--node", p.url, "--state", state, "--from", "0") // the state wins
	if second[0] != saved {
		t.Fatalf("second run began at %d, the state said %d", second[0], saved)
	}
	for i := 1; i < len(second); i++ {
		if second[i] != second[i-1]+1 {
			t.Fatalf("second run: places %v", second)
		}
	}
}
