package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/loopback"
)

// The dashboard's browser tests run headless Chromium (Debian's chromium,
// which .ci/run installs) against real node processes. Without a browser
// they skip, saying so, unless WEFT_REQUIRE_BROWSER is set (as .ci/run
// sets it): then they fail. With WEFT_SCREENSHOTS=DIR they write the
// pages' screenshots there (docs/ takes them: docs/DASHBOARD.md).

const viewW, viewH = 1280, 1000

// chromiumPath returns the browser to run, or "" if there is none.
func chromiumPath() string {
	if p := os.Getenv("WEFT_CHROMIUM"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// browser is a headless Chromium page for one test. Every uncaught
// exception, console.error and failed load the page reports is an error
// of the test, but the answers the dashboard expects: 404 for a message's
// proof not made yet, and for a device the registry does not hold.
type browser struct {
	ctx context.Context
	mu  sync.Mutex
	bad []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("WEFT_REQUIRE_BROWSER") != "" {
			t.Fatal("no Chromium at /usr/bin/chromium (WEFT_CHROMIUM names another), and WEFT_REQUIRE_BROWSER is set")
		}
		t.Skip("no Chromium (install Debian's chromium, as .ci/run does, or set WEFT_CHROMIUM): the dashboard's browser tests do not run")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(viewW, viewH))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelA()
	})
	b := &browser{ctx: ctx}
	// The first action starts the browser, with no deadline (one would
	// stop the browser with it).
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(viewW, viewH)); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !expected404(m) {
				b.mu.Lock()
				b.bad = append(b.bad, fmt.Sprintf("%s (%s %s)", m, m.Source, m.URL))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// expected404 reports whether a failed load is one the dashboard asks for
// knowingly: the proof of a message not covered yet, a device not
// registered.
func expected404(m chromedp.ConsoleMessage) bool {
	return m.Source == "network" && strings.Contains(m.Text, "404") &&
		(strings.HasSuffix(m.URL, "/proof") || strings.Contains(m.URL, "/api/v1/devices/"))
}

// do runs actions with a deadline, failing the test with what.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates the JavaScript expression js in the page.
func eval[T any](t *testing.T, b *browser, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// wait polls the JavaScript expression cond until it is true.
func (b *browser) wait(t *testing.T, what, cond string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+cond+")", chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(25*time.Second)))
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// errors fails the test with what the page reported.
func (b *browser) errors(t *testing.T) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // the console's last messages
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.bad {
		t.Error("the page reported " + m)
	}
}

// screenshot writes the page, as it is, to WEFT_SCREENSHOTS/name if set.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("WEFT_SCREENSHOTS")
	if dir == "" {
		return
	}
	time.Sleep(300 * time.Millisecond) // a frame or two of the canvases
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startValidators runs n validator node processes of equal weight,
// peered in a full mesh over QUIC on loopback (no proof of work, no
// fsync, and extra flags), and returns them and the --validator flags
// that name them.
func startValidators(t *testing.T, n int, extra ...string) ([]*proc, []string) {
	t.Helper()
	addrs, err := loopback.FreeAddrs("udp", n)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	var keys []dag.PublicKey
	for range n {
		dir := t.TempDir()
		_, key, _ := ed25519.GenerateKey(nil)
		if err := client.WriteKeyFile(filepath.Join(dir, identityFile), key); err != nil {
			t.Fatal(err)
		}
		dirs, keys = append(dirs, dir), append(keys, dag.PublicKey(key.Public().(ed25519.PublicKey)))
	}
	var vals []string
	for _, k := range keys {
		vals = append(vals, "--validator", k.String()+":1")
	}
	var procs []*proc
	for i := range n {
		args := append(append([]string{"--gossip-addr", addrs[i], "--pow-base", "0", "--no-sync"}, extra...), vals...)
		for j := range n {
			if j != i {
				args = append(args, "--peer", keys[j].String()+"@"+addrs[j])
			}
		}
		procs = append(procs, startNode(t, dirs[i], args...))
	}
	return procs, vals
}

// getMessage reads a message's JSON from a node.
func getMessage(t *testing.T, url string, id dag.ID) map[string]any {
	t.Helper()
	resp, err := http.Get(url + "/api/v1/messages/" + id.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&m) != nil {
		t.Fatalf("GET message %s: %d", id, resp.StatusCode)
	}
	return m
}

// TestDashboard opens the dashboard of the first of three validator node
// processes while a device sends readings: the overview's charts and DAG
// receive data; searching a confirmed message's id opens its page with
// its fields, payload and confirmation; clicking a parent opens the
// parent; the device page charts its readings; the peers page lists both
// peers, connected; and the page reports no error.
func TestDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three node processes and a browser")
	}
	b := newBrowser(t)
	procs, _ := startValidators(t, 3, "--checkpoint-interval", "300ms")
	url := procs[0].url

	_, dev, _ := ed25519.GenerateKey(nil)
	devKey := dag.PublicKey(dev.Public().(ed25519.PublicKey))
	var (
		mu   sync.Mutex
		sent []dag.ID
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a reading every 50 ms until the test is done
		defer close(done)
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			payload := fmt.Sprintf(`{"temp_c":%.1f,"rh":%d}`, 4+float64(seq%20)/10, 40+seq%7)
			m, err := buildRaw(url, dev, seq, []byte(payload))
			if err != nil {
				continue // the node is stopping
			}
			if code, err := postRaw(url, m.Bytes()); err == nil && code == 201 {
				mu.Lock()
				sent = append(sent, m.ID())
				mu.Unlock()
			}
		}
	}()
	defer func() { close(stop); <-done }()

	b.do(t, "open the overview", chromedp.Navigate(url+"/"))
	b.wait(t, "the charts' data", `weft.series.messages.some(v => v > 0) && weft.series.confirmed.some(v => v > 0) &&
		weft.series.p50.some(v => v != null) && weft.series.memory.some(v => v > 0) && weft.series.disk.some(v => v > 0)`)
	b.wait(t, "the DAG view's messages, confirmed", `[...weft.dag.nodes.values()].some(n => n.confirmed && !n.validator) &&
		[...weft.dag.nodes.values()].some(n => n.validator)`)
	b.wait(t, "the validators' activity", `document.querySelectorAll("#validators tr").length === 4 && !document.querySelector("#validators").textContent.includes("not since")`)
	time.Sleep(3 * time.Second) // a few seconds of lines, for the screenshot
	// Pointing at a message with parents and children drawn shows its
	// details and both its cones; a click opens its page.
	hover := `(() => {
		const c = document.querySelector("#dag"), r = c.getBoundingClientRect(), now = Date.now();
		const n = [...weft.dag.nodes.values()].reverse().find(n => n.children.length && n.parents.some(p => weft.dag.nodes.has(p)) && now - n.at > 1000);
		if (!n) return "";
		const [x, y] = weft.dagPos(n, r.width, r.height, now);
		c.dispatchEvent(new MouseEvent("mousemove", {clientX: r.left + x, clientY: r.top + y, bubbles: true}));
		return n.id;
	})()`
	b.wait(t, "a message with parents and children in the view", hover+` !== ""`)
	b.wait(t, "its details and cones", `(`+hover+`, document.querySelector("#tip").style.display === "block" && weft.cones.past > 0 && weft.cones.future > 0)`)
	b.screenshot(t, "dashboard-overview.png")

	// A confirmed reading, found by the search box.
	var id dag.ID
	for deadline := time.Now().Add(20 * time.Second); id == (dag.ID{}); time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		if len(sent) > 3 {
			id = sent[2]
		}
		mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("no reading accepted")
		}
	}
	var m map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if m = getMessage(t, url, id); m["confirmed"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reading %s not confirmed", id)
		}
	}
	eval[bool](t, b, fmt.Sprintf(`document.querySelector("#q").value = "%s"; document.querySelector("#search").requestSubmit(); true`, id))
	b.wait(t, "the message page", fmt.Sprintf(`location.pathname === "/messages/%s" && document.querySelector("#msgid")?.textContent === "%s" &&
		document.querySelector("#state")?.textContent === "confirmed" && document.querySelector("#payload")?.textContent.includes("temp_c")`, id, id))
	b.screenshot(t, "dashboard-message.png")

	parent := m["parents"].([]any)[0].(string)
	eval[bool](t, b, `document.querySelector('#fields a[href^="/messages/"]').click(); true`)
	b.wait(t, "the parent's page", fmt.Sprintf(`location.pathname === "/messages/%s" && document.querySelector("#msgid")?.textContent === "%s"`, parent, parent))

	b.do(t, "open the device page", chromedp.Navigate(url+"/devices/"+devKey.String()))
	b.wait(t, "the device's readings", `document.querySelector("#device") && [...document.querySelectorAll("#field option")].map(o => o.value).join() === "temp_c,rh" && document.querySelector("#readings")`)
	b.screenshot(t, "dashboard-device.png")

	eval[bool](t, b, `document.querySelector("#nav-peers").click(); true`)
	b.wait(t, "both peers, connected", `location.pathname === "/peers" && document.querySelectorAll("tr.peer").length === 2 &&
		[...document.querySelectorAll("tr.peer")].every(r => r.textContent.includes("connected") && !r.textContent.includes("not connected") && r.textContent.includes(" ms"))`)
	text := eval[string](t, b, `document.querySelector("#peers").textContent`)
	for _, p := range procs[1:] {
		info := nodeInfo(t, p.url)
		if !strings.Contains(text, info.NodeID[:12]) {
			t.Errorf("the peers page does not list %s:\n%s", info.NodeID, text)
		}
	}
	b.screenshot(t, "dashboard-peers.png")
	b.errors(t)
}

// nodeInfo reads GET /api/v1/info.
func nodeInfo(t *testing.T, url string) struct {
	NodeID string `json:"node_id"`
} {
	t.Helper()
	var info struct {
		NodeID string `json:"node_id"`
	}
	resp, err := http.Get(url + "/api/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	return info
}
