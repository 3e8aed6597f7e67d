package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/client/clienttest"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// tipsServer answers Tips with fixed parents, min_timestamp and a
// difficulty of base + the size's extra bits, as a node with that base does.
func tipsServer(t *testing.T, network string, minTS int64, base, maxPayload int) *Client {
	p0, p1 := dag.ID{1, 2}, dag.ID{3, 4}
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		var size int
		fmt.Sscan(r.URL.Query().Get("size"), &size)
		fmt.Fprintf(w, `{"parents": [%q, %q], "min_timestamp": %d, "difficulty": %d, "network": %q, "network_id": "%016x", "max_payload": %d}`,
			p0, p1, minTS, pow.Difficulty(dag.MinSize+size, base), network, uint64(dag.NetworkIDFromName(network)), maxPayload)
	})
}

func TestDeviceBuild(t *testing.T) {
	now := time.Unix(1767225600, 0)
	for _, tc := range []struct {
		name    string
		minTS   int64
		payload int
		wantTS  int64
	}{
		{"clock ahead of parents", now.UnixNano() - 1e9, 40, now.UnixNano()},
		{"parents ahead of clock", now.UnixNano() + 3600e9, 40, now.UnixNano() + 3600e9},
		{"larger payload, more work", 0, 300, now.UnixNano()},
		{"empty payload", 0, 0, now.UnixNano()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const base = 8
			key := testKey(7)
			d := &Device{Key: key, Client: tipsServer(t, testNetwork, tc.minTS, base, 1024), Workers: 2,
				Now: func() time.Time { return now }}
			payload := make([]byte, tc.payload)
			for i := range payload {
				payload[i] = byte(i)
			}
			m, err := d.Build(context.Background(), payload)
			if err != nil {
				t.Fatal(err)
			}
			if len(payload) > 0 {
				payload[0]++ // Build must have copied it
			}

			got, err := dag.Decode(m.Bytes(), 1024)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			p := dag.Params{Network: testNetworkID, MaxPayload: 1024, PoWBase: base}
			if err := p.Check(got); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if want := pow.Difficulty(dag.MinSize+tc.payload, base); p.Difficulty(got.Size()) != want || !pow.Meets(got.ID(), want) {
				t.Fatalf("difficulty %d, want %d", p.Difficulty(got.Size()), want)
			}
			if got.Timestamp != tc.wantTS || got.Timestamp < tc.minTS {
				t.Errorf("timestamp %d, want %d (min %d)", got.Timestamp, tc.wantTS, tc.minTS)
			}
			if got.Parents != [2]dag.ID{{1, 2}, {3, 4}} || got.Issuer != dag.PublicKey(key.Public().(ed25519.PublicKey)) ||
				len(got.Payload) != tc.payload || (tc.payload > 0 && got.Payload[0] != 0) {
				t.Errorf("fields: %+v", got)
			}
			if got.Seq != uint64(now.UnixNano()) {
				t.Errorf("first seq %d, want the clock %d", got.Seq, now.UnixNano())
			}
			if m.ID() != got.ID() {
				t.Error("the message's cached ID is stale")
			}
			m2, err := d.Build(context.Background(), payload)
			if err != nil || m2.Seq != got.Seq+1 {
				t.Fatalf("second seq %d, %v; want %d", m2.Seq, err, got.Seq+1)
			}
		})
	}
}

func TestDeviceBuildRefuses(t *testing.T) {
	ctx := context.Background()
	c := tipsServer(t, testNetwork, 0, 8, 100)
	if _, err := (&Device{Key: testKey(1), Client: c}).Build(ctx, make([]byte, 101)); !errors.Is(err, dag.ErrTooLarge) {
		t.Errorf("over the network's limit: %v", err)
	}
	if _, err := (&Device{Key: testKey(1), Client: c}).Build(ctx, make([]byte, dag.MaxPayload+1)); !errors.Is(err, dag.ErrTooLarge) {
		t.Errorf("over the encoding's limit: %v", err)
	}
	if _, err := (&Device{Key: testKey(1), Client: c, Network: "weft-mainnet"}).Build(ctx, nil); !errors.Is(err, ErrWrongNetwork) {
		t.Errorf("another network: %v", err)
	}
	if _, err := (&Device{Key: testKey(1), Client: c, Network: testNetwork}).Build(ctx, nil); err != nil {
		t.Errorf("the device's network: %v", err)
	}
	if _, err := (&Device{Client: c}).Build(ctx, nil); err == nil {
		t.Error("no key")
	}
	if _, err := (&Device{Key: testKey(1)}).Build(ctx, nil); err == nil {
		t.Error("no client")
	}
	// Work that never ends ends with the context.
	hard := tipsServer(t, testNetwork, 0, 60, 100)
	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := (&Device{Key: testKey(1), Client: hard, Workers: 1}).Build(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unsolvable: %v", err)
	}
}

func TestDeviceSendAndWait(t *testing.T) {
	node := clienttest.NewServer(clienttest.Config{Network: testNetwork, PoWBase: 10})
	defer node.Close()
	c := New(node.URL)
	d := &Device{Key: testKey(1), Client: c, Network: testNetwork}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var ids []dag.ID
	for i := range 3 {
		id, err := d.Send(ctx, []byte(fmt.Sprintf(`{"t": %d}`, i)))
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	info, err := c.Get(ctx, ids[2])
	if err != nil || info.Confirmed || info.Parents[0] != ids[1] || string(info.Payload) != `{"t": 2}` {
		t.Fatalf("Get: %+v, %v", info, err)
	}
	raw, err := c.Raw(ctx, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	// The same bytes again are a duplicate.
	if _, err := c.Submit(ctx, raw); !IsCode(err, CodeDuplicate) {
		t.Fatalf("resubmit: %v", err)
	}

	// A device that restarts continues above its earlier sequence numbers.
	again := &Device{Key: testKey(1), Client: c}
	if _, err := again.Send(ctx, nil); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	// One whose clock went back is refused.
	back := &Device{Key: testKey(1), Client: c, Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	if _, err := back.Send(ctx, nil); !IsCode(err, CodeStaleSequence) {
		t.Fatalf("clock stepped back: %v", err)
	}

	waited := make(chan error, 1)
	go func() {
		info, err := c.WaitConfirmed(ctx, ids[1])
		if err == nil && (!info.Confirmed || info.ConfirmedAt == 0) {
			err = fmt.Errorf("not confirmed: %+v", info)
		}
		waited <- err
	}()
	for node.Subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	node.Confirm(ids[1])
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
}

func TestDeviceConcurrentSends(t *testing.T) {
	node := clienttest.NewServer(clienttest.Config{Network: testNetwork, PoWBase: 6, AutoConfirm: true})
	defer node.Close()
	d := &Device{Key: testKey(2), Client: New(node.URL), Workers: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := d.Send(ctx, []byte{byte(i)})
			if err == nil {
				_, err = d.Client.WaitConfirmed(ctx, id)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := node.Len(); n != 17 {
		t.Fatalf("node holds %d messages, want 17", n)
	}
}

func TestDeviceRemotePoW(t *testing.T) {
	allowed, other := testKey(1), testKey(2)
	node := clienttest.NewServer(clienttest.Config{Network: testNetwork, PoWBase: 10,
		RemotePoW: []dag.PublicKey{dag.PublicKey(allowed.Public().(ed25519.PublicKey))}})
	defer node.Close()
	ctx := context.Background()

	d := &Device{Key: allowed, Client: New(node.URL), RemotePoW: true}
	m, err := d.Build(ctx, []byte("x"))
	if err != nil || m.Nonce != 0 {
		t.Fatalf("Build with RemotePoW: nonce %d, %v", m.Nonce, err)
	}
	id, err := d.Send(ctx, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	stored, ok := node.Message(id)
	if !ok || !pow.Meets(id, node.Params().Difficulty(stored.Size())) {
		t.Fatalf("stored %v, id %s", ok, id)
	}
	if _, err := (&Device{Key: other, Client: New(node.URL), RemotePoW: true}).Send(ctx, []byte("x")); !IsCode(err, CodeForbidden) {
		t.Fatalf("key not listed: %v", err)
	}
}

func TestBatchAgainstFakeNode(t *testing.T) {
	node := clienttest.NewServer(clienttest.Config{Network: testNetwork, PoWBase: 4})
	defer node.Close()
	c := New(node.URL)
	ctx := context.Background()
	d := &Device{Key: testKey(3), Client: c}
	good, err := d.Build(ctx, []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	forged := testMessage(testKey(4), 1, "b")
	forged.Payload = []byte("c") // the signature no longer verifies
	if err := forged.Solve(ctx, dag.Params{Network: testNetworkID, MaxPayload: 1024, PoWBase: 4}, 1); err != nil {
		t.Fatal(err)
	}
	res, err := c.SubmitBatch(ctx, [][]byte{good.Bytes(), forged.Bytes(), []byte("short"), good.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[0].ID != good.ID() || !IsCode(res[1].Err, CodeBadSignature) ||
		!IsCode(res[2].Err, CodeMalformed) || !IsCode(res[3].Err, CodeDuplicate) {
		t.Fatalf("results %+v", res)
	}
	node.FailNext("", http.StatusServiceUnavailable, CodeOverloaded, "full")
	if _, err := New(node.URL, noRetry).SubmitBatch(ctx, [][]byte{good.Bytes()}); !IsCode(err, CodeOverloaded) {
		t.Fatalf("overloaded: %v", err)
	}
}
