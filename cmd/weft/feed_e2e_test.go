package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

// info reads the node's /api/v1/info.
func info(url string) (wire.Info, error) {
	var in wire.Info
	resp, err := http.Get(url + "/api/v1/info")
	if err != nil {
		return in, err
	}
	defer resp.Body.Close()
	return in, json.NewDecoder(resp.Body).Decode(&in)
}

// feedConsumer follows a node's confirmed events the way a careful
// consumer does: it remembers the last id it processed and resumes after
// it with Last-Event-ID whenever the stream ends.
type feedConsumer struct {
	mu     sync.Mutex
	last   int64               // the last place processed, -1 for none
	seen   map[dag.ID]struct{} // the messages seen confirmed
	gapErr error               // the first place that did not follow the one before
}

// follow reads the stream at url until it ends or ctx does. Each event must
// take the place after the last one.
func (fc *feedConsumer) follow(ctx context.Context, url string) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/v1/events?kind=confirmed&from=0", nil)
	fc.mu.Lock()
	if fc.last >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(fc.last, 10))
	}
	fc.mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("events: %d", resp.StatusCode)
	}
	er := wire.NewEventReader(resp.Body)
	for {
		ev, err := er.Next()
		if err != nil {
			return err
		}
		c, err := wire.DecodeConfirmed(ev.Data)
		if err != nil {
			return err
		}
		fc.mu.Lock()
		if int64(c.Confirmation) != fc.last+1 && fc.gapErr == nil {
			fc.gapErr = fmt.Errorf("event %d after %d", c.Confirmation, fc.last)
		}
		fc.last = int64(c.Confirmation)
		fc.seen[c.ID] = struct{}{}
		fc.mu.Unlock()
	}
}

// TestFeedAcrossRestarts: a consumer of the confirmed events that is cut
// off mid-stream, and a node SIGKILLed and restarted under load, lose no
// confirmed event and repeat none: the consumer resumes with
// Last-Event-ID, and every acknowledged message reaches it confirmed.
func TestFeedAcrossRestarts(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	p := startNode(t, dir, "--pow-base", "4")
	var (
		mu    sync.Mutex
		url   = p.url
		acked []dag.ID
	)
	curURL := func() string { mu.Lock(); defer mu.Unlock(); return url }
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	for d := range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			key := ed25519.NewKeyFromSeed(append(make([]byte, 31), byte(d+1)))
			for seq := uint64(1); loadCtx.Err() == nil; {
				m, err := buildRaw(curURL(), key, seq, []byte(fmt.Sprintf(`{"d":%d,"seq":%d}`, d, seq)))
				if err != nil {
					time.Sleep(50 * time.Millisecond) // the node is down
					continue
				}
				st, err := postRaw(curURL(), m.Bytes())
				switch {
				case err == nil && st == 201:
					mu.Lock()
					acked = append(acked, m.ID())
					mu.Unlock()
					seq++
				case err == nil && st == 409: // stored before a kill, unanswered: the same seq is taken
					seq++
				default:
					time.Sleep(50 * time.Millisecond)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}

	fc := &feedConsumer{last: -1, seen: map[dag.ID]struct{}{}}
	consumerCtx, stopConsumer := context.WithCancel(context.Background())
	consumed := make(chan struct{})
	var cut func() // ends the consumer's current stream
	var cutMu sync.Mutex
	go func() {
		defer close(consumed)
		for consumerCtx.Err() == nil {
			ctx, cancel := context.WithCancel(consumerCtx)
			cutMu.Lock()
			cut = cancel
			cutMu.Unlock()
			err := fc.follow(ctx, curURL())
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				time.Sleep(50 * time.Millisecond) // the node is down
			}
		}
	}()
	for round := range 3 {
		time.Sleep(time.Duration(1000+rng.IntN(1500)) * time.Millisecond)
		cutMu.Lock()
		if cut != nil {
			cut() // the consumer drops its stream and comes back
		}
		cutMu.Unlock()
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		if err := p.kill(syscall.SIGKILL); err == nil {
			t.Fatalf("round %d: the node exited 0 on SIGKILL", round)
		}
		p = startNode(t, dir, "--pow-base", "4")
		mu.Lock()
		url = p.url
		mu.Unlock()
	}
	time.Sleep(time.Second)
	stopLoad()
	load.Wait()
	// Wait until the node has confirmed everything and the consumer has
	// seen all of it: every acknowledged message, and as many events as
	// the node made durable. (The node counts a message confirmed before
	// its confirmation is durable, and only then publishes its event, so
	// the counts alone can agree while the last events are on their way.)
	deadline := time.Now().Add(time.Minute)
	for {
		in, err := info(p.url)
		fc.mu.Lock()
		last := fc.last
		unseen := 0
		for _, id := range acked {
			if _, ok := fc.seen[id]; !ok {
				unseen++
			}
		}
		fc.mu.Unlock()
		if err == nil && unseen == 0 && in.Unconfirmed == 0 && in.Pending == 0 && int64(in.Confirmations) == last+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("after a minute: %+v, the consumer at %d, %d acknowledged messages unseen", in, last, unseen)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopConsumer()
	cutMu.Lock()
	cut()
	cutMu.Unlock()
	<-consumed
	if fc.gapErr != nil {
		t.Fatalf("the consumer saw a gap or a repeat: %v", fc.gapErr)
	}
	missing := 0
	c := client.New(p.url)
	for _, id := range acked {
		if _, ok := fc.seen[id]; !ok {
			missing++
			// What the node says of it, for the report.
			mi, err := c.Get(context.Background(), id)
			if err != nil {
				t.Logf("missing %s: %v", id, err)
			} else {
				t.Logf("missing %s: position %d solid %v pending %v confirmed %v (at %d) orphaned %v",
					id, mi.Position, mi.Solid, mi.Pending, mi.Confirmed, mi.ConfirmedAt, mi.Orphaned)
			}
		}
	}
	t.Logf("%d messages acknowledged, %d confirmations followed across 3 consumer drops and 3 SIGKILLs", len(acked), fc.last+1)
	if missing > 0 || len(acked) == 0 {
		t.Fatalf("%d of %d acknowledged messages never reached the consumer confirmed", missing, len(acked))
	}
}
