package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

// signed builds a device message on the given parents, signed and solved.
func signed(t *testing.T, n *Node, key ed25519.PrivateKey, seq uint64, payload string, parents [2]dag.ID) *dag.Message {
	t.Helper()
	m := &dag.Message{Version: dag.Version, Network: n.Params().Network, Parents: parents, Seq: seq,
		Timestamp: time.Now().UnixNano(), Payload: []byte(payload)}
	m.Sign(key)
	if err := m.Solve(context.Background(), n.Params(), 1); err != nil {
		t.Fatal(err)
	}
	return m
}

// reencode returns m as a node decodes it from the wire, after edit.
func reencode(t *testing.T, m *dag.Message, edit func(*dag.Message)) *dag.Message {
	t.Helper()
	c, err := dag.Decode(m.AppendEncoding(nil), dag.MaxPayload)
	if err != nil {
		t.Fatal(err)
	}
	edit(c)
	out, err := dag.Decode(c.AppendEncoding(nil), dag.MaxPayload)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copiesOf returns how many resubmissions of id wait with it, as the core
// loop sees them.
func copiesOf(t *testing.T, n *Node, id dag.ID) int {
	t.Helper()
	k := 0
	if err := n.query(context.Background(), func(*dag.Core) { k = len(n.copies[id]) }); err != nil {
		t.Fatal(err)
	}
	return k
}

func submit1(n *Node, m *dag.Message) error {
	return n.Submit(context.Background(), []*dag.Message{m})[0]
}

// TestForgeriesChargeNothing: forged messages in a device's name, at ten
// times its rate, spend none of its allowance; each is refused for what is
// wrong with it. The node's clock is the test's: it moves 100 ms between
// the device's messages, and the forgeries come in between.
func TestForgeriesChargeNothing(t *testing.T) {
	const (
		rate  = 20 // a second, for the device; it sends 10
		steps = 20 // of 100 ms
	)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	n, _ := startNode(t, t.TempDir(), func(c *Config) {
		c.NoPoW, c.PoWBase = false, 6
		c.RatePerIssuer, c.RateBurst = rate, 5
		c.Time = func() time.Time { return time.Unix(0, clock.Load()) }
	})
	dev := testKey(9)
	forged := map[string]int{}
	k := uint64(0)
	forge := func() { // half bad signatures, half no work
		k++
		m := device(t, n, dev, 1_000_000+k, "forged")
		if k%2 == 0 { // a bad signature, with the work done
			m = reencode(t, m, func(m *dag.Message) { m.Signature[0] ^= 1 })
			if err := m.Solve(context.Background(), n.Params(), 1); err != nil {
				t.Fatal(err)
			}
		} else { // a good signature, without the work
			for n.Params().CheckCheap(m) == nil {
				m = reencode(t, m, func(m *dag.Message) { m.Nonce++ })
			}
		}
		forged[Code(submit1(n, m))]++
	}
	for i := uint64(1); i <= steps; i++ {
		for range rate { // ten times the allowance of rate a second: rate in 100 ms
			forge()
		}
		if err := submit1(n, device(t, n, dev, i, fmt.Sprintf("reading %d", i))); err != nil {
			t.Fatalf("the device's message %d was refused: %v", i, err)
		}
		clock.Add(int64(100 * time.Millisecond))
	}
	t.Logf("forgeries answered: %v", forged)
	want := map[string]int{"bad_signature": steps * rate / 2, "insufficient_pow": steps * rate / 2}
	if !maps.Equal(forged, want) {
		t.Errorf("forgeries answered %v, want %v", forged, want)
	}
}

// TestChecksBeforeSequence: a message that fails a check is refused for
// that, not for its sequence.
func TestChecksBeforeSequence(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), nil)
	dev := testKey(9)
	if err := submit1(n, device(t, n, dev, 10, "a")); err != nil {
		t.Fatal(err)
	}
	stale := reencode(t, device(t, n, dev, 5, "b"), func(m *dag.Message) { m.Signature[9] ^= 1 })
	if err := submit1(n, stale); !errors.Is(err, dag.ErrSignature) {
		t.Fatalf("stale with a bad signature: %v, want bad signature", err)
	}
	other := reencode(t, device(t, n, dev, 5, "c"), func(m *dag.Message) { m.Network++ })
	if err := submit1(n, other); !errors.Is(err, dag.ErrNetwork) {
		t.Fatalf("stale on another network: %v, want wrong network", err)
	}
}

// TestPendingResubmitRebuild: a message waiting for its parent answers
// ErrPending, shows as pending, answers the same when resubmitted, and
// holds its sequence against a rebuilt message; once the parent comes, one
// message is stored for the issuer and sequence, and no equivocation.
func TestPendingResubmitRebuild(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), func(c *Config) { c.SubmitTimeout = 200 * time.Millisecond })
	dev, other := testKey(9), testKey(10)
	tips := n.Tips(0)
	parent := signed(t, n, other, 1, "parent", tips.Parents) // not submitted yet
	child := signed(t, n, dev, 1, "child", [2]dag.ID{parent.ID(), tips.Parents[0]})

	if err := submit1(n, child); !errors.Is(err, ErrPending) {
		t.Fatalf("child of an unknown parent: %v, want ErrPending", err)
	}
	mi, err := n.Message(context.Background(), child.ID())
	if err != nil || !mi.Pending {
		t.Fatalf("GET of the waiting child: %+v, %v; want pending", mi, err)
	}
	if err := submit1(n, child); !errors.Is(err, ErrPending) {
		t.Fatalf("the same bytes again: %v, want ErrPending", err)
	}
	rebuilt := signed(t, n, dev, 1, "child, rebuilt", tips.Parents)
	if err := submit1(n, rebuilt); !errors.Is(err, ErrStaleSequence) {
		t.Fatalf("another message with the waiting one's sequence: %v, want ErrStaleSequence", err)
	}

	// A resubmission waiting when the parent arrives is answered stored.
	again := make(chan error, 1)
	go func() {
		again <- n.Submit(context.Background(), []*dag.Message{child})[0]
	}()
	// Let it reach the core first, so that it is a copy of the waiting
	// child when the parent comes (either order is correct; this one is
	// the case under test). Pending is not an event: a bounded poll.
	for deadline := time.Now().Add(5 * time.Second); copiesOf(t, n, child.ID()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the resubmission never reached the core")
		}
		time.Sleep(time.Millisecond)
	}
	if err := submit1(n, parent); err != nil {
		t.Fatal(err)
	}
	if err := <-again; err != nil && !errors.Is(err, ErrDuplicate) {
		t.Fatalf("the resubmission when the parent came: %v", err)
	}
	waitConfirmed(t, n, child.ID())
	var pk dag.PublicKey
	copy(pk[:], dev.Public().(ed25519.PublicKey))
	mis, err := n.IssuerMessages(pk, 0, false, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(mis) != 1 || mis[0].Msg.ID() != child.ID() {
		t.Fatalf("the issuer has %d stored messages, want the child alone", len(mis))
	}
	if eq := n.Equivocations(nil, 10); len(eq) != 0 {
		t.Fatalf("equivocations: %+v", eq)
	}
	if err := submit1(n, rebuilt); !errors.Is(err, ErrStaleSequence) {
		t.Fatalf("the rebuilt message after the child is stored: %v", err)
	}
}

// TestInvalidParentAtOnce: a child of a message the node refused for a
// fault of its bytes is refused at once, whichever arrives first.
func TestInvalidParentAtOnce(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), func(c *Config) { c.SubmitTimeout = 10 * time.Second })
	dev := testKey(9)
	tips := n.Tips(0)
	bad := reencode(t, signed(t, n, dev, 1, "bad", tips.Parents), func(m *dag.Message) { m.Signature[1] ^= 1 })
	if err := submit1(n, bad); !errors.Is(err, dag.ErrSignature) {
		t.Fatalf("bad signature: %v", err)
	}
	child := signed(t, n, dev, 2, "child", [2]dag.ID{bad.ID(), tips.Parents[0]})
	if err := submit1(n, child); !errors.Is(err, dag.ErrInvalidParent) {
		t.Fatalf("child of a refused message: %v, want ErrInvalidParent", err)
	}

	// The child first: it waits, and is refused when its parent is.
	bad2 := reencode(t, signed(t, n, dev, 3, "bad2", tips.Parents), func(m *dag.Message) { m.Signature[1] ^= 1 })
	child2 := signed(t, n, dev, 4, "child2", [2]dag.ID{bad2.ID(), tips.Parents[0]})
	child2ID := child2.ID()
	res := make(chan error, 1)
	go func() { res <- submit1(n, child2) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if mi, err := n.Message(context.Background(), child2ID); err == nil && mi.Pending {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := submit1(n, bad2); !errors.Is(err, dag.ErrSignature) {
		t.Fatalf("bad signature: %v", err)
	}
	if err := <-res; !errors.Is(err, dag.ErrInvalidParent) {
		t.Fatalf("waiting child of a refused message: %v, want ErrInvalidParent", err)
	}
	// Its sequence is free again: the device may rebuild with it.
	if err := submit1(n, signed(t, n, dev, 4, "child2 rebuilt", tips.Parents)); err != nil {
		t.Fatalf("rebuilt after an invalid parent: %v", err)
	}
}

// TestRemotePoWKeepsValidNonce: a message whose nonce already meets the
// difficulty keeps it, every time.
func TestRemotePoWKeepsValidNonce(t *testing.T) {
	dev := testKey(9)
	var pk dag.PublicKey
	copy(pk[:], dev.Public().(ed25519.PublicKey))
	n, _ := startNode(t, t.TempDir(), func(c *Config) {
		c.NoPoW, c.PoWBase = false, 6
		c.RemotePoWKeys = []dag.PublicKey{pk}
	})
	for i := uint64(1); i <= 100; i++ {
		m := device(t, n, dev, i, fmt.Sprintf("r%d", i))
		nonce := m.Nonce
		if err := n.SubmitRemotePoW(context.Background(), m); err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		if m.Nonce != nonce {
			t.Fatalf("try %d: nonce %d replaced by %d", i, nonce, m.Nonce)
		}
	}
	// Without work, the node does it.
	m := reencode(t, device(t, n, dev, 200, "no work"), func(m *dag.Message) { m.Nonce++ })
	for n.Params().CheckCheap(m) == nil {
		m = reencode(t, m, func(m *dag.Message) { m.Nonce++ })
	}
	if err := n.SubmitRemotePoW(context.Background(), m); err != nil {
		t.Fatalf("remote work: %v", err)
	}
}

// TestEquivocationsListed: two messages of one issuer and sequence that
// arrive the way gossip brings them (no edge policy) are both kept, and
// listed.
func TestEquivocationsListed(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), nil)
	dev := testKey(9)
	a := device(t, n, dev, 7, "a")
	b := device(t, n, dev, 7, "b")
	for _, m := range []*dag.Message{a, b} {
		j := newJob([]*dag.Message{m})
		j.peer = false
		j.self = true // past the edge, as a peer's message would be
		n.verifyQ <- j
		<-j.done
		if err := j.items[0].err; err != nil {
			t.Fatal(err)
		}
	}
	var pk dag.PublicKey
	copy(pk[:], dev.Public().(ed25519.PublicKey))
	eq := n.Equivocations(&pk, 10)
	if len(eq) != 1 || eq[0].Seq != 7 || eq[0].First != a.ID() || eq[0].Second != b.ID() {
		t.Fatalf("equivocations of the device: %+v", eq)
	}
	if other := testKey(10).Public().(ed25519.PublicKey); len(n.Equivocations((*dag.PublicKey)(other), 10)) != 0 {
		t.Fatal("another issuer's list is not empty")
	}
}
