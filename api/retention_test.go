package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/storage"
)

// getStatus GETs u and decodes a JSON answer into v (if not nil).
func getStatus(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %d, not JSON: %v", u, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// TestRetentionAPI runs a node whose retention drops epochs of 100
// messages a second after they are cut, and checks what its API says of
// the history it dropped: 410 pruned for a dropped parent of a kept
// message, 404 for other dropped messages, and where the listings'
// history begins.
func TestRetentionAPI(t *testing.T) {
	srv, n := testServer(t, func(c *node.Config) {
		// Cut by count only: once the messages stop, the newest epoch is
		// never cut, and keeps the last of them.
		c.Store = storage.Config{NoSync: true, EpochRecords: 100, EpochAge: time.Hour, Retain: time.Second}
	})
	dev := &builder{t: t, n: n, key: key(40)}
	var ids []dag.ID
	deadline := time.Now().Add(30 * time.Second)
	for !n.History().HasDropped {
		if time.Now().After(deadline) {
			t.Fatalf("nothing dropped after %d messages: %+v", len(ids), n.History())
		}
		m := dev.build("r", nil)
		if code, out := post(t, srv.URL+"/api/v1/messages", m.Bytes()); code != http.StatusCreated {
			t.Fatalf("submit: %d %v", code, out)
		}
		ids = append(ids, m.ID())
		time.Sleep(2 * time.Millisecond)
	}
	// Once the device stops, the validator soon has nothing to confirm and
	// stops issuing: no record comes, no epoch is cut, and the drops end
	// at the newest epoch, which holds the last messages. Check what is
	// left once they have.
	h := n.History()
	for deadline := time.Now().Add(30 * time.Second); ; h = n.History() {
		time.Sleep(3 * time.Second) // beyond Retain and EpochAge, and the writer's turn
		if n.History() == h {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the drops did not end: %+v", n.History())
		}
	}
	t.Logf("%d messages sent; history: %+v", len(ids), h)

	// Each message sent answers 200 if kept, else 410 or 404; the 410s are
	// the dropped parents of kept messages.
	kept := map[dag.ID]bool{}
	var gone, pruned []dag.ID
	for _, id := range ids {
		var out map[string]any
		switch code := getStatus(t, srv.URL+"/api/v1/messages/"+id.String(), &out); code {
		case http.StatusOK:
			if pos := uint64(out["position"].(float64)); pos < h.FirstPos {
				t.Fatalf("message at position %d served, the node holds from %d", pos, h.FirstPos)
			}
			kept[id] = true
		case http.StatusGone:
			if errCode(out) != "pruned" {
				t.Fatalf("410 with code %q", errCode(out))
			}
			pruned = append(pruned, id)
		case http.StatusNotFound:
			if errCode(out) != "not_found" {
				t.Fatalf("404 with code %q", errCode(out))
			}
			gone = append(gone, id)
		default:
			t.Fatalf("GET a sent message: %d %v", code, out)
		}
	}
	if len(kept) == 0 {
		t.Fatalf("%d kept, %d pruned (410), %d gone (404): want some kept", len(kept), len(pruned), len(gone))
	}
	// Walk the parents from the kept messages (the device's and, through
	// them, the validator's): every one the node no longer holds is a
	// dropped parent of a kept message, an entry point, so 410, never 404.
	// The walk must meet some: the genesis at position 0 was dropped.
	seen := map[dag.ID]bool{}
	var queue []dag.ID
	for id := range kept {
		queue = append(queue, id)
		seen[id] = true
	}
	pruned = pruned[:0]
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		var out struct{ Parents []string }
		getStatus(t, srv.URL+"/api/v1/messages/"+id.String(), &out)
		for _, p := range out.Parents {
			pid, err := dag.ParseID(p)
			if err != nil {
				t.Fatal(err)
			}
			if seen[pid] {
				continue
			}
			seen[pid] = true
			var po map[string]any
			switch code := getStatus(t, srv.URL+"/api/v1/messages/"+p, &po); code {
			case http.StatusOK:
				queue = append(queue, pid)
			case http.StatusGone:
				pruned = append(pruned, pid)
				if code := getStatus(t, srv.URL+"/api/v1/messages/"+p+"/raw", nil); code != http.StatusGone {
					t.Fatalf("GET raw of a pruned message: %d, want 410", code)
				}
			default:
				t.Fatalf("GET %s, a parent of a kept message: %d %v, want 200 or 410", p, code, po)
			}
		}
	}
	if len(pruned) == 0 {
		t.Fatalf("no kept message has a dropped parent, with position 0 dropped (%+v)", h)
	}
	t.Logf("%d kept of the device's, %d entry points met, %d of the device's gone (404)", len(kept), len(pruned), len(gone))

	// The listings say where history begins.
	var page struct {
		Messages []struct {
			Seq       uint64
			Timestamp int64
		}
		CompleteAfter *int64  `json:"complete_after"`
		FirstSeq      *uint64 `json:"first_seq"`
	}
	getStatus(t, srv.URL+"/api/v1/issuers/"+pubOf(key(40)).String()+"/messages?limit=1", &page)
	if page.CompleteAfter == nil || page.FirstSeq == nil || len(page.Messages) != 1 || page.Messages[0].Seq != *page.FirstSeq {
		t.Fatalf("device listing after drops: %+v", page)
	}
	if *page.FirstSeq <= 1 {
		t.Fatalf("first_seq %d: the device's first messages were dropped", *page.FirstSeq)
	}
	var tp struct {
		Messages []struct {
			Timestamp int64
		}
		CompleteAfter *int64 `json:"complete_after"`
	}
	getStatus(t, srv.URL+"/api/v1/messages?limit=1000", &tp)
	if tp.CompleteAfter == nil || *tp.CompleteAfter != h.CompleteAfter {
		t.Fatalf("time listing: complete_after %v, want %d", tp.CompleteAfter, h.CompleteAfter)
	}
}

// TestNoRetentionNoHistory: a node that keeps everything says nothing of
// where history begins.
func TestNoRetentionNoHistory(t *testing.T) {
	srv, n := testServer(t, nil)
	dev := &builder{t: t, n: n, key: key(41)}
	if code, out := post(t, srv.URL+"/api/v1/messages", dev.build("x", nil).Bytes()); code != http.StatusCreated {
		t.Fatalf("submit: %d %v", code, out)
	}
	var out map[string]any
	getStatus(t, srv.URL+"/api/v1/issuers/"+pubOf(key(41)).String()+"/messages", &out)
	if _, ok := out["complete_after"]; ok {
		t.Fatalf("complete_after on a node that dropped nothing: %v", out)
	}
	if _, ok := out["first_seq"]; ok {
		t.Fatalf("first_seq on a node that dropped nothing: %v", out)
	}
}
