package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// TestStorageUnavailable: once the store cannot commit (here a file capped
// in size, as a full disk), submissions are refused with
// ErrStorageUnavailable before they reach the core, Ready and Info say why,
// the validator stops issuing, and Tips hands out only durable messages.
func TestStorageUnavailable(t *testing.T) {
	n, err := New(Config{DataDir: t.TempDir(), Identity: testKey(1), Network: "node-test", NoPoW: true,
		IssueInterval: 5 * time.Millisecond, SubmitTimeout: 200 * time.Millisecond,
		Store: storage.Config{NoSync: true, MaxSize: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		// The store gives up on the failing commit when it closes.
		if err := <-done; !errors.Is(err, storage.ErrFailed) {
			t.Errorf("Run = %v, want the store's failure", err)
		}
	}()
	dev := testKey(9)
	payload := strings.Repeat("x", 900)
	var (
		seq  uint64
		tips []dag.ID
	)
	deadline := time.Now().Add(30 * time.Second)
	for seq < 5000 && time.Now().Before(deadline) && !errors.Is(err, ErrStorageUnavailable) {
		seq++
		t := n.Tips(len(payload))
		tips = append(tips, t.Parents[0], t.Parents[1])
		m := &dag.Message{Version: dag.Version, Network: n.Params().Network, Parents: t.Parents, Seq: seq,
			Timestamp: max(time.Now().UnixNano(), t.MinTimestamp), Payload: []byte(fmt.Sprint(seq, payload))}
		m.Sign(dev)
		err = submit1(n, m)
	}
	if !errors.Is(err, ErrStorageUnavailable) || Code(err) != "storage_unavailable" {
		t.Fatalf("after %d messages into a 1 MiB store: %v, want ErrStorageUnavailable", seq, err)
	}
	if err := n.Ready(); !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "storage unavailable") {
		t.Fatalf("Ready() = %v, want not ready for the storage", err)
	}
	in := n.Info()
	if in.StorageError == "" || in.Durable >= in.Messages+1 {
		t.Fatalf("Info: storage error %q, durable %d of %d messages", in.StorageError, in.Durable, in.Messages)
	}
	// What Tips hands out is durable: every parent is below the store's end.
	durable := n.store.NextPos()
	for _, id := range append(tips, n.Tips(0).Parents[0], n.Tips(0).Parents[1]) {
		e, err := n.store.Get(id)
		if err != nil || e.Pos >= durable {
			t.Fatalf("Tips handed out %s, not durable: %v", id, err)
		}
	}
	// Nothing more enters the core: the count of messages stays put, the
	// validator's own included.
	before := n.Info().Messages
	time.Sleep(20 * n.cfg.IssueInterval)
	if after := n.Info().Messages; after != before {
		t.Fatalf("messages %d -> %d while the store fails", before, after)
	}
	if err := n.Submit(context.Background(), []*dag.Message{device(t, n, dev, seq+1, "more")})[0]; !errors.Is(err, ErrStorageUnavailable) {
		t.Fatalf("another submission: %v", err)
	}
}
