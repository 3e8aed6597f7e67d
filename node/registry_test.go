package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

func pub(b byte) dag.PublicKey { return dag.PublicKey(testKey(b).Public().(ed25519.PublicKey)) }

func ptr[T any](v T) *T { return &v }

func TestDeviceValidation(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), nil)
	for _, tc := range []struct {
		d     Device
		field string
	}{
		{Device{Name: strings.Repeat("n", MaxDeviceName+1)}, "name"},
		{Device{Name: "bad\x00name"}, "name"},
		{Device{Name: "\xff"}, "name"},
		{Device{Owner: strings.Repeat("o", MaxDeviceOwner+1)}, "owner"},
		{Device{Tags: []string{"Upper"}}, "tags"},
		{Device{Tags: []string{""}}, "tags"},
		{Device{Tags: []string{"-lead"}}, "tags"},
		{Device{Tags: []string{"has space"}}, "tags"},
		{Device{Tags: []string{strings.Repeat("t", MaxTagLen+1)}}, "tags"},
		{Device{Tags: func() (tags []string) {
			for i := range MaxDeviceTags + 1 {
				tags = append(tags, fmt.Sprintf("t%d", i))
			}
			return tags
		}()}, "tags"},
		{Device{State: 7}, "state"},
	} {
		tc.d.Key = pub(50)
		_, err := n.AddDevice("ops", tc.d)
		var de *DeviceError
		if !errors.As(err, &de) || de.Field != tc.field || !errors.Is(err, ErrInvalidDevice) || Code(err) != "bad_request" {
			t.Errorf("%+v: %v, want a DeviceError on %s", tc.d, err, tc.field)
		}
	}
	if _, ok := n.Device(pub(50)); ok {
		t.Fatal("a refused device is registered")
	}
	// Repeated tags are one; tags are sorted.
	d, err := n.AddDevice("ops", Device{Key: pub(50), Name: "fridge 1", Tags: []string{"site:b", "cold-chain", "site:b"}})
	if err != nil || !slices.Equal(d.Tags, []string{"cold-chain", "site:b"}) || d.State != DeviceAllowed {
		t.Fatalf("add: %+v, %v", d, err)
	}
	if _, err := n.AddDevice("ops", Device{Key: pub(50)}); !errors.Is(err, ErrDeviceExists) || Code(err) != "device_exists" {
		t.Fatalf("second add: %v", err)
	}
	if _, err := n.EditDevice("ops", pub(51), DeviceEdit{Name: ptr("x")}); !errors.Is(err, ErrUnknownDevice) || Code(err) != "not_found" {
		t.Fatalf("edit of an unknown device: %v", err)
	}
	if err := n.RemoveDevice("ops", pub(51)); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("remove of an unknown device: %v", err)
	}
	if _, err := n.EditDevice("ops", pub(50), DeviceEdit{RemoveTags: []string{"NOT A TAG"}}); !errors.Is(err, ErrInvalidDevice) {
		t.Fatalf("untag of a malformed tag: %v", err)
	}
	if _, err := n.EditDevice("ops\n", pub(50), DeviceEdit{Name: ptr("y")}); !errors.Is(err, ErrInvalidDevice) {
		t.Fatalf("a who with a newline: %v", err)
	}
}

// TestRevokedRefusedAtOnce: a revoked device's next submission is refused
// with ErrRevoked, after its signature is checked; allowing it again lets
// it in. No restart in between.
func TestRevokedRefusedAtOnce(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), nil)
	key := testKey(60)
	k := pub(60)
	seq := uint64(0)
	send := func() error {
		seq++
		return submit1(n, device(t, n, key, seq, "reading"))
	}
	if err := send(); err != nil {
		t.Fatalf("unregistered device, open registry: %v", err)
	}
	if _, err := n.AddDevice("ops", Device{Key: k, Name: "meter"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.EditDevice("ops", k, DeviceEdit{State: DeviceRevoked}); err != nil {
		t.Fatal(err)
	}
	if err := send(); !errors.Is(err, ErrRevoked) || Code(err) != "revoked" {
		t.Fatalf("revoked device: %v", err)
	}
	// A forgery in its name fails its signature first.
	forged := reencode(t, device(t, n, key, seq+1, "forged"), func(m *dag.Message) { m.Payload = []byte("FORGED") })
	if err := submit1(n, forged); !errors.Is(err, dag.ErrSignature) {
		t.Fatalf("forgery of a revoked device: %v", err)
	}
	if _, err := n.EditDevice("ops", k, DeviceEdit{State: DeviceAllowed}); err != nil {
		t.Fatal(err)
	}
	if err := send(); err != nil {
		t.Fatalf("allowed again: %v", err)
	}
	// Removed, the device is unknown again: in an open registry it may submit.
	if err := n.RemoveDevice("ops", k); err != nil {
		t.Fatal(err)
	}
	if err := send(); err != nil {
		t.Fatalf("removed: %v", err)
	}
}

// TestRegistryClosedAndAllowlist: in closed mode only registered, allowed
// devices submit; the allowlist seeds the registry and still gates on its
// own.
func TestRegistryClosedAndAllowlist(t *testing.T) {
	a, b, c := testKey(61), testKey(62), testKey(63)
	n, _ := startNode(t, t.TempDir(), func(cfg *Config) {
		cfg.DevicesClosed = true
		cfg.Allowlist = []dag.PublicKey{pub(61), pub(62)}
	})
	for _, k := range []dag.PublicKey{pub(61), pub(62)} {
		if d, ok := n.Device(k); !ok || d.State != DeviceAllowed {
			t.Fatalf("the allowlist did not seed %s: %+v", k, d)
		}
	}
	if err := submit1(n, device(t, n, a, 1, "a")); err != nil {
		t.Fatalf("a, seeded: %v", err)
	}
	if err := submit1(n, device(t, n, c, 1, "c")); !errors.Is(err, ErrNotAllowed) || Code(err) != "forbidden" {
		t.Fatalf("c, not registered: %v", err)
	}
	if _, err := n.AddDevice("ops", Device{Key: pub(63)}); err != nil {
		t.Fatal(err)
	}
	if err := submit1(n, device(t, n, c, 1, "c")); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("c, registered but not on the allowlist: %v", err)
	}
	if _, err := n.EditDevice("ops", pub(62), DeviceEdit{State: DeviceRevoked}); err != nil {
		t.Fatal(err)
	}
	if err := submit1(n, device(t, n, b, 1, "b")); !errors.Is(err, ErrRevoked) {
		t.Fatalf("b, on the allowlist and revoked: %v", err)
	}
	// A reload of the allowlist adds c, and leaves b revoked.
	if err := n.SetAllowlist([]dag.PublicKey{pub(62), pub(63)}); err != nil {
		t.Fatal(err)
	}
	if err := submit1(n, device(t, n, c, 2, "c")); err != nil {
		t.Fatalf("c, on the new allowlist: %v", err)
	}
	if err := submit1(n, device(t, n, b, 2, "b")); !errors.Is(err, ErrRevoked) {
		t.Fatalf("b after the reload: %v", err)
	}
	if err := submit1(n, device(t, n, a, 2, "a")); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("a, off the allowlist: %v", err)
	}
	cs, err := n.DeviceChanges(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var seeded []string
	for _, ch := range cs {
		if ch.Who == SeedWho {
			seeded = append(seeded, ch.Key.String())
		}
	}
	if len(seeded) != 2 {
		t.Fatalf("the change log names %d devices added by the allowlist, want 2 (c exists): %+v", len(seeded), cs)
	}
}

// TestRegistryPersistsAndLogs: the registry and its change log survive a
// restart; the log says who did what and when, newest first, pages by
// before, and keeps the latest MaxDeviceChanges; the registry takes at
// most MaxDevices.
func TestRegistryPersistsAndLogs(t *testing.T) {
	dir := t.TempDir()
	mod := func(cfg *Config) { cfg.MaxDeviceChanges, cfg.MaxDevices = 6, 3 }
	n, stop := startNode(t, dir, mod)
	start := time.Now()
	steps := []func() error{
		func() error { _, err := n.AddDevice("alice", Device{Key: pub(70), Name: "fridge"}); return err },
		func() error {
			_, err := n.EditDevice("bob", pub(70), DeviceEdit{AddTags: []string{"cold-chain", "site-a"}})
			return err
		},
		func() error {
			_, err := n.EditDevice("alice", pub(70), DeviceEdit{Name: ptr("fridge 2"), Owner: ptr("ward 3"),
				Tags: &[]string{"cold-chain"}, State: DeviceRevoked})
			return err
		},
		func() error { _, err := n.AddDevice("bob", Device{Key: pub(71), Tags: []string{"site-a"}}); return err },
		func() error { return n.RemoveDevice("bob", pub(71)) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	// An edit that changes nothing is not logged.
	if _, err := n.EditDevice("carol", pub(70), DeviceEdit{Name: ptr("fridge 2")}); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	want := []string{
		"alice add " + pub(70).String()[:4] + " allowed", "bob tag cold-chain,site-a", "alice untag site-a", "alice rename fridge 2",
		"alice owner ward 3", "alice revoke ", "bob add " + pub(71).String()[:4] + " allowed", "bob remove ",
	}
	want = want[len(want)-6:] // the log keeps 6
	check := func(n *Node) {
		t.Helper()
		cs, err := n.DeviceChanges(0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i, c := range slices.Backward(cs) {
			s := c.Who + " " + c.Op + " " + c.Detail
			if c.Op == OpAdd {
				s = c.Who + " add " + c.Key.String()[:4] + " " + c.Detail
			}
			got = append(got, s)
			if c.At.Before(start) || c.At.After(end) {
				t.Errorf("change %d at %v, not between %v and %v", i, c.At, start, end)
			}
			if i > 0 && cs[i-1].Seq != c.Seq+1 {
				t.Errorf("seqs %d then %d", cs[i-1].Seq, c.Seq)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("change log:\n%q\nwant\n%q", got, want)
		}
		if cs[0].Seq != 8 {
			t.Errorf("newest seq %d, want 8", cs[0].Seq)
		}
		page, err := n.DeviceChanges(cs[1].Seq, 2)
		if err != nil || len(page) != 2 || page[0].Seq != cs[2].Seq || page[1].Seq != cs[3].Seq {
			t.Errorf("page before %d: %+v, %v", cs[1].Seq, page, err)
		}
		d, ok := n.Device(pub(70))
		if !ok || d.Name != "fridge 2" || d.Owner != "ward 3" || !slices.Equal(d.Tags, []string{"cold-chain"}) ||
			d.State != DeviceRevoked || !d.Created.Before(d.Updated) {
			t.Errorf("device: %+v, %v", d, ok)
		}
		if _, ok := n.Device(pub(71)); ok {
			t.Error("the removed device is back")
		}
		if keys := n.DevicesByTag("cold-chain"); !slices.Equal(keys, []dag.PublicKey{pub(70)}) {
			t.Errorf("by tag cold-chain: %v", keys)
		}
		if keys := n.DevicesByTag("site-a"); len(keys) != 0 {
			t.Errorf("by tag site-a: %v", keys)
		}
	}
	check(n)
	stop()
	n, _ = startNode(t, dir, mod)
	check(n)
	// The registry is bounded.
	for _, b := range []byte{72, 73} {
		if _, err := n.AddDevice("alice", Device{Key: pub(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.AddDevice("alice", Device{Key: pub(74)}); !errors.Is(err, ErrRegistryFull) || Code(err) != "registry_full" {
		t.Fatalf("a fourth device: %v", err)
	}
}

// TestDeviceList pages through the registry in key order, with and
// without a tag, against a plain sort of what was added.
func TestDeviceList(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), nil)
	var all, even []dag.PublicKey
	for i := range 40 {
		k := pub(byte(100 + i))
		d := Device{Key: k}
		if i%2 == 0 {
			d.Tags = []string{"even"}
			even = append(even, k)
		}
		if _, err := n.AddDevice("ops", d); err != nil {
			t.Fatal(err)
		}
		all = append(all, k)
	}
	for _, tc := range []struct {
		tag  string
		want []dag.PublicKey
	}{{"", all}, {"even", even}, {"none", nil}} {
		slices.SortFunc(tc.want, func(a, b dag.PublicKey) int { return strings.Compare(a.String(), b.String()) })
		var got []dag.PublicKey
		var after *dag.PublicKey
		for {
			page := n.Devices(after, tc.tag, 7)
			for _, d := range page {
				got = append(got, d.Key)
			}
			if len(page) < 7 {
				break
			}
			after = &page[len(page)-1].Key
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("tag %q: %d devices, want %d, or out of order", tc.tag, len(got), len(tc.want))
		}
	}
}

// TestGossipIgnoresRegistry: a device revoked on one node is refused
// there, but its message submitted to another node reaches it by gossip
// and is stored: validity between nodes does not depend on the registry.
func TestGossipIgnoresRegistry(t *testing.T) {
	tn := startNetwork(t, 2, 0)
	key := testKey(80)
	if _, err := tn.nodes[1].AddDevice("ops", Device{Key: pub(80), State: DeviceRevoked}); err != nil {
		t.Fatal(err)
	}
	if err := submit1(tn.nodes[1], device(t, tn.nodes[1], key, 1, "here")); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked device at node 1: %v", err)
	}
	m := device(t, tn.nodes[0], key, 2, "there")
	if err := tn.nodes[0].Submit(context.Background(), []*dag.Message{m})[0]; err != nil {
		t.Fatalf("node 0: %v", err)
	}
	converge(t, tn, []dag.ID{m.ID()}, 30*time.Second)
	if mi, err := tn.nodes[1].Message(context.Background(), m.ID()); err != nil || mi.Pending {
		t.Fatalf("node 1 does not store the revoked device's message from gossip: %+v, %v", mi, err)
	}
}
