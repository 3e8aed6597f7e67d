package api

import (
	"context"
	"testing"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/gossip"
	"github.com/weftnet/weft/internal/loopback"
	"github.com/weftnet/weft/node"
)

// TestEquivocationAcrossNodes: a device that sends one message to one node
// and another with the same sequence to a second node has made an
// equivocation. Both nodes keep both messages (validity does not depend on
// which came first), both list the pair, and they stay in agreement.
func TestEquivocationAcrossNodes(t *testing.T) {
	addrs, err := loopback.FreeAddrs("udp", 2)
	if err != nil {
		t.Fatal(err)
	}
	keys := []byte{41, 42}
	var vals []dag.Validator
	var peers []gossip.Peer
	for i, k := range keys {
		vals = append(vals, dag.Validator{Key: pubOf(key(k)), Weight: 1})
		peers = append(peers, gossip.Peer{Key: pubOf(key(k)), Addr: addrs[i]})
	}
	var clients []*client.Client
	for i, k := range keys {
		srv, _ := testServer(t, func(c *node.Config) {
			c.Identity, c.Validators, c.GossipListen = key(k), vals, addrs[i]
			c.Peers = []gossip.Peer{peers[1-i]}
		})
		clients = append(clients, client.New(srv.URL))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	dev := key(7)
	tips, err := clients[0].Tips(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	var ids []dag.ID
	for i, payload := range []string{"reading A", "reading B"} {
		m := &dag.Message{Version: dag.Version, Network: tips.NetworkID, Parents: [2]dag.ID{tips.Parents[0], tips.Parents[0]},
			Seq: 5, Timestamp: time.Now().UnixNano(), Payload: []byte(payload)}
		m.Sign(dev)
		p := dag.Params{Network: tips.NetworkID, MaxPayload: tips.MaxPayload, PoWBase: testPoWBase}
		if err := m.Solve(ctx, p, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := clients[i].Submit(ctx, m.Bytes()); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		ids = append(ids, m.ID())
	}
	devKey := pubOf(dev)
	for i, c := range clients {
		var eqs []client.Equivocation
		for ctx.Err() == nil {
			if eqs, err = c.Equivocations(ctx, &devKey, 0); err != nil {
				t.Fatal(err)
			}
			if len(eqs) > 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(eqs) != 1 || eqs[0].Seq != 5 || eqs[0].Issuer != devKey {
			t.Fatalf("node %d lists %+v, want the device's equivocation at 5", i, eqs)
		}
		if got := map[dag.ID]bool{eqs[0].First: true, eqs[0].Second: true}; !got[ids[0]] || !got[ids[1]] {
			t.Fatalf("node %d lists %s and %s, want %s and %s", i, eqs[0].First, eqs[0].Second, ids[0], ids[1])
		}
		all, err := c.Equivocations(ctx, nil, 0)
		if err != nil || len(all) != 1 {
			t.Fatalf("node %d, every issuer: %+v %v", i, all, err)
		}
		for _, id := range ids {
			for ctx.Err() == nil {
				mi, err := c.Get(ctx, id)
				if err != nil {
					t.Fatalf("node %d, message %s: %v", i, id, err)
				}
				if mi.Confirmed {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if ctx.Err() != nil {
				t.Fatalf("node %d: message %s not confirmed", i, id)
			}
		}
	}
}
