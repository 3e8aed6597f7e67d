package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

// TestConfigTimeIsTheClock: the edge policy reads Config.Time, not the
// machine's clock. A node whose clock is ten minutes behind refuses a
// message stamped with the machine's time as too far in the future, and
// takes one stamped with its own.
func TestConfigTimeIsTheClock(t *testing.T) {
	const behind = 10 * time.Minute
	clock := func() time.Time { return time.Now().Add(-behind) }
	n, _ := startNode(t, t.TempDir(), func(c *Config) { c.Time = clock })
	dev := testKey(9)
	g := dag.Genesis(n.Params().Network).ID()

	m := signed(t, n, dev, 1, "the machine's time", [2]dag.ID{g, g})
	if err := submit1(n, m); !errors.Is(err, ErrFuture) {
		t.Fatalf("a message stamped %v ahead of the node's clock: %v, want ErrFuture", behind, err)
	}
	own := &dag.Message{Version: dag.Version, Network: n.Params().Network, Parents: [2]dag.ID{g, g}, Seq: 2,
		Timestamp: clock().UnixNano(), Payload: []byte("the node's time")}
	own.Sign(dev)
	if err := own.Solve(context.Background(), n.Params(), 1); err != nil {
		t.Fatal(err)
	}
	if err := submit1(n, own); err != nil {
		t.Fatalf("a message stamped with the node's clock: %v", err)
	}
}

// zeroSource is a rand.Source that always returns 0.
type zeroSource struct{}

func (zeroSource) Uint64() uint64 { return 0 }

// TestConfigRandDrawsTips: the tips a device is handed are drawn from
// Config.Rand. With a source that always returns 0, every draw takes the
// first two tips of the sample, in that order; with a real source, fifty
// draws from two tips would all be the same ordered pair with probability
// 2^-49.
func TestConfigRandDrawsTips(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), func(c *Config) {
		c.Rand = zeroSource{}
		// Not a validator: no messages of its own, which would take the
		// tips away.
		var other dag.PublicKey
		copy(other[:], testKey(77).Public().(ed25519.PublicKey))
		c.Validators = []dag.Validator{{Key: other, Weight: 1}}
	})
	dev := testKey(9)
	g := dag.Genesis(n.Params().Network).ID()
	a := signed(t, n, dev, 1, "a", [2]dag.ID{g, g})
	b := signed(t, n, dev, 2, "b", [2]dag.ID{g, g})
	for _, m := range []*dag.Message{a, b} {
		if err := submit1(n, m); err != nil {
			t.Fatal(err)
		}
	}
	// Submit answers after the commit, and the snapshot readers draw from
	// is published before it: both are tips by now.
	first := n.Tips(0)
	if first.Parents[0] == first.Parents[1] {
		t.Fatalf("Tips offers one tip, %v; want a and b", first.Parents)
	}
	for i := 0; i < 50; i++ {
		if got := n.Tips(0); got.Parents != first.Parents {
			t.Fatalf("draw %d: %v, draw 0: %v; want the same with a constant source", i, got.Parents, first.Parents)
		}
	}
}
