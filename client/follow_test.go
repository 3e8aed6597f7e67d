package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/storage"
)

// TestFollowConfirmed: against a real node whose connections are cut
// twice while it confirms, FollowConfirmed hands every confirmation once,
// in the node's order, from place 0.
func TestFollowConfirmed(t *testing.T) {
	n, err := node.New(node.Config{DataDir: t.TempDir(), Identity: ed25519.NewKeyFromSeed(make([]byte, 32)), Network: testNetwork,
		PoWBase: 4, IssueInterval: 5 * time.Millisecond, Store: storage.Config{NoSync: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- n.Run(ctx) }()
	a := api.New(n, "test", zerolog.Nop())
	srv := httptest.NewServer(a)
	defer func() {
		a.EndStreams()
		srv.Close()
		cancel()
		<-nodeDone
	}()
	c := New(srv.URL)
	d := &Device{Key: testKey(1), Client: c, Network: testNetwork}
	var devKey dag.PublicKey
	copy(devKey[:], d.Key[32:])
	const sends = 30
	followed := make(chan *ConfirmedEvent, 1024)
	followCtx, stop := context.WithCancel(ctx)
	followErr := make(chan error, 1)
	go func() {
		followErr <- c.FollowConfirmed(followCtx, FeedOptions{}, 0, func(e *ConfirmedEvent) error {
			followed <- e
			return nil
		})
	}()
	for i := range sends {
		if _, err := d.Send(ctx, fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
		if i == 10 || i == 20 {
			srv.CloseClientConnections() // the stream ends; FollowConfirmed resumes
		}
	}
	var next uint64
	seen := 0
	for seen < sends {
		select {
		case e := <-followed:
			if e.Confirmation != next {
				t.Fatalf("confirmation %d, want %d", e.Confirmation, next)
			}
			next++
			if e.Issuer == devKey {
				seen++
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d device messages followed confirmed by place %d", seen, sends, next)
		}
	}
	stop()
	if err := <-followErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("FollowConfirmed ended with %v, want context.Canceled", err)
	}
}
