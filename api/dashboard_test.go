package api

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
)

// TestDashboardPages: every page of the dashboard is the one embedded
// HTML page, which names no resource outside the node (it must work on a
// site with no internet). The browser tests are in cmd/weft.
func TestDashboardPages(t *testing.T) {
	srv, _ := testServer(t, nil)
	id := strings.Repeat("ab", 32)
	for _, path := range []string{"/", "/peers", "/messages/" + id, "/devices/" + id} {
		resp, body := do(t, "GET", srv.URL+path, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || string(body) != string(dashboardHTML) {
			t.Fatalf("GET %s: %d %s, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	// Nothing loaded from elsewhere: no src or href but the page's own
	// paths and in-page data, no @import, no protocol-relative URL.
	outside := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?\s*(https?:|//)|@import|url\(\s*["']?(https?:|//)`)
	if m := outside.Find(dashboardHTML); m != nil {
		t.Fatalf("the dashboard loads something from outside the node: %q", m)
	}
}

// TestInfoForDashboard: the fields of GET /api/v1/info and of a message
// that the dashboard draws: refusals by code, memory, disk, and the
// validators whose approval counted.
func TestInfoForDashboard(t *testing.T) {
	srv, n := testServer(t, nil)
	dev := &builder{t: t, n: n, key: key(43)}
	good := dev.build("reading", nil)
	if st, out := post(t, srv.URL+"/api/v1/messages", good.Bytes()); st != 201 {
		t.Fatalf("submit: %d %v", st, out)
	}
	raw := slices.Clone(dev.build("forged", nil).Bytes())
	raw[len(raw)-dag.TrailerSize+1] ^= 1 // inside the signature
	bad, err := n.Params().Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Solve(context.Background(), n.Params(), 1); err != nil { // only the signature is wrong
		t.Fatal(err)
	}
	for range 2 {
		if st, out := post(t, srv.URL+"/api/v1/messages", bad.Bytes()); st != 422 || errCode(out) != wire.CodeBadSignature {
			t.Fatalf("forged: %d %v", st, out)
		}
	}
	var in wire.Info
	_, b := do(t, "GET", srv.URL+"/api/v1/info", nil)
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	if in.Rejected[wire.CodeBadSignature] != 2 {
		t.Errorf("rejected %v, want 2 bad_signature", in.Rejected)
	}
	if in.DiskBytes == 0 {
		t.Error("disk_bytes 0")
	}
	if runtime.GOOS == "linux" && in.MemoryBytes < 1<<20 {
		t.Errorf("memory_bytes %d on Linux", in.MemoryBytes)
	}
	if in.CaughtUp {
		t.Error("caught_up on a node without peers")
	}
	var m wire.Message
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, b := do(t, "GET", srv.URL+"/api/v1/messages/"+good.ID().String(), nil)
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &m) != nil {
			t.Fatalf("GET the message: %d", resp.StatusCode)
		}
		if m.Confirmed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not confirmed")
		}
	}
	if m.ApprovalWeight == nil || !slices.Equal(m.Approvers, []string{in.Validators[0].Key}) {
		t.Fatalf("a confirmed message on a node that is the only validator: weight %v, approvers %v", m.ApprovalWeight, m.Approvers)
	}
}
