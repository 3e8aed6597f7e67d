package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

func TestAckCheckEvery(t *testing.T) {
	for r, want := range map[Retention]time.Duration{
		{}:                                  DefaultAckCheckEvery,
		{Retain: 720 * time.Hour}:           DefaultAckCheckEvery,
		{Retain: 5 * time.Minute}:           DefaultAckCheckEvery,
		{Retain: time.Minute}:               15 * time.Second,
		{Retain: 2 * time.Second}:           time.Second,
		{MaxDisk: 1e9, EpochAge: time.Hour}: DefaultAckCheckEvery,
	} {
		if got := ackCheckEvery(r); got != want {
			t.Errorf("%+v: every %v, want %v", r, got, want)
		}
	}
}

// TestAckChecker submits a few messages to an in-process node and checks
// that the checker finds them, in an export and in the listings, and
// finds missing an acknowledgement the node never stored, either way;
// then that a node that does not answer fails the check and leaves the
// acknowledgements pending.
func TestAckChecker(t *testing.T) {
	nodes, stop, err := launchInProcess(context.Background(), NetSpec{Dir: t.TempDir(), Nodes: 1, Network: "weft-bench-acks",
		PoWBase: 4, Seed: 1, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := nodes[0].URL
	tg, err := connect(ctx, []string{url}, 100)
	if err != nil {
		t.Fatal(err)
	}
	g := newGenerator(tg.network, tg.difficulty, 3, 100, 1, 0)
	g.schedule(time.Now(), 1000)
	var msgs []*genMsg
	if err := g.build(ctx, 30, func(m *genMsg) error {
		c := *m
		c.enc = append([]byte(nil), m.enc...)
		msgs = append(msgs, &c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c := newAckChecker([]string{url}, time.Hour, 0, 1)
	if ran, _ := c.ranSince(0); ran {
		t.Error("a check ran before any")
	}
	cl := client.New(url)
	for _, m := range msgs {
		if _, err := cl.Submit(ctx, m.enc); err != nil {
			t.Fatalf("message %d: %v", m.i, err)
		}
		c.add(0, Ack{Device: g.device(m.i), Issuer: g.pubs[g.device(m.i)], Seq: m.seq, ID: m.id, At: time.Now(), Timestamp: m.ts})
	}
	c.check(ctx, false)
	if r := c.result(); r.Acked != 30 || r.Checked != 30 || r.Exported != 30 || r.Lost != 0 || r.Checks != 1 || r.Failed != 0 || r.ByID != 30 {
		t.Fatalf("after 30 stored messages: %+v", r)
	}
	if r := c.result(); r.CheckS <= 0 || r.MaxCheckS <= 0 || r.MaxCheckS > r.CheckS {
		t.Errorf("the check took %g s, at most %g", r.CheckS, r.MaxCheckS)
	}
	ran, seen := c.ranSince(0)
	if !ran {
		t.Error("the check is not seen by the sampler")
	}
	if ran, _ := c.ranSince(seen); ran {
		t.Error("a check seen twice")
	}
	c.check(ctx, false) // nothing pending: no check
	if ran, _ := c.ranSince(seen); ran {
		t.Error("nothing to look for counts as a check")
	}
	// A ghost stamped inside the stored messages' range, among them.
	var ghost dag.ID
	ghost[0] = 0xee
	last := msgs[len(msgs)-1]
	c.add(0, Ack{Device: g.device(last.i), Issuer: g.pubs[g.device(last.i)], Seq: last.seq + 1, ID: ghost, At: time.Now().Add(-3 * time.Second),
		Timestamp: msgs[10].ts}, Ack{Device: g.device(msgs[3].i), Issuer: g.pubs[g.device(msgs[3].i)], Seq: msgs[3].seq, ID: msgs[3].id,
		At: time.Now(), Timestamp: msgs[3].ts})
	c.check(ctx, false)
	r := c.result()
	if r.Acked != 32 || r.Checked != 32 || r.Exported != 32 || r.Lost != 1 || len(r.LostIDs) != 1 || r.LostIDs[0] != ghost.String() || r.Checks != 2 {
		t.Fatalf("after an acknowledgement the node never stored, looked for in an export: %+v", r)
	}
	// The same, in the listings.
	var ghost2 dag.ID
	ghost2[0] = 0xef
	c.add(0, Ack{Device: g.device(last.i), Issuer: g.pubs[g.device(last.i)], Seq: last.seq + 2, ID: ghost2, At: time.Now(), Timestamp: last.ts})
	c.check(ctx, true)
	r = c.result()
	if r.Checked != 33 || r.Listed != 1 || r.Lost != 2 || len(r.LostIDs) != 2 || r.LostIDs[1] != ghost2.String() || r.Checks != 3 || r.Equivocations != 0 {
		t.Fatalf("after an acknowledgement the node never stored, looked for in the listings: %+v", r)
	}
	c.equivocations(ctx)
	if r := c.result(); r.Issuers != 3 || r.Equivocations != 0 || r.Failed != 0 {
		t.Errorf("equivocations of the 3 devices: %+v", r)
	}
	if r.MaxAgeS < 3 || r.MaxAgeS > 60 {
		t.Errorf("the oldest acknowledgement was %.1f s old when looked for, want about 3", r.MaxAgeS)
	}
	if r.Err() == nil {
		t.Error("a loss is no error")
	}

	// run looks every c.every, and finishes the look under way when
	// stopped.
	c2 := newAckChecker([]string{url}, 20*time.Millisecond, 0, 1)
	stopRun, ran2 := make(chan struct{}), make(chan struct{})
	go func() { defer close(ran2); c2.run(ctx, stopRun) }()
	for _, m := range msgs[:10] {
		c2.add(0, Ack{Device: g.device(m.i), Issuer: g.pubs[g.device(m.i)], Seq: m.seq, ID: m.id, At: time.Now(), Timestamp: m.ts})
	}
	for deadline := time.Now().Add(10 * time.Second); c2.started.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	close(stopRun)
	<-ran2
	if r := c2.result(); r.Checks != 1 || r.Checked != 10 || r.Failed != 0 {
		t.Errorf("run, stopped after its first look: %+v", r)
	}

	// With a retention of 10 s, an acknowledgement 6 s old is not looked
	// for: the store may have dropped it.
	c3 := newAckChecker([]string{url}, time.Hour, 10*time.Second, 1)
	old, young := msgs[0], msgs[1]
	c3.add(0, Ack{Device: g.device(old.i), Issuer: g.pubs[g.device(old.i)], Seq: old.seq, ID: ghost, At: time.Now().Add(-6 * time.Second), Timestamp: old.ts},
		Ack{Device: g.device(young.i), Issuer: g.pubs[g.device(young.i)], Seq: young.seq, ID: young.id, At: time.Now(), Timestamp: young.ts})
	c3.check(ctx, false)
	if r := c3.result(); r.Acked != 2 || r.Checked != 1 || r.Expired != 1 || r.Lost != 0 || r.MaxAgeS > 5 {
		t.Errorf("an expired and a young acknowledgement: %+v", r)
	}

	// A node that does not answer.
	dead := newAckChecker([]string{"http://127.0.0.1:1"}, time.Hour, 0, 1)
	dead.add(0, Ack{Issuer: g.pubs[0], Seq: 1, ID: ghost, At: time.Now()})
	dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	dead.check(dctx, false)
	dcancel()
	if r := dead.result(); r.Checks != 1 || r.Failed != 1 || r.Checked != 0 || r.Lost != 0 || r.FirstError == "" || r.Err() != nil {
		t.Errorf("a node that does not answer: %+v", r)
	}
	if n := len(dead.pending[0]); n != 1 {
		t.Errorf("%d acknowledgements pending after a failed check, want 1", n)
	}
	dctx, dcancel = context.WithTimeout(ctx, 300*time.Millisecond)
	dead.equivocations(dctx)
	dcancel()
	if r := dead.result(); r.Failed != 2 || r.Issuers != 0 {
		t.Errorf("equivocations from a node that does not answer: %+v", r)
	}
	if _, err := CheckExported(ctx, cl, []Ack{{ID: ghost, Issuer: g.pubs[0], Seq: 1}}, 0, 1); err == nil {
		t.Error("an acknowledgement without a timestamp looked for in an export")
	}
}

func TestExportPace(t *testing.T) {
	for _, c := range []struct {
		n     int
		every time.Duration
		want  float64
	}{{150_000, 15 * time.Second, 20_000}, {300_000, 30 * time.Second, 20_000}, {10, 30 * time.Second, minExportPace}, {0, time.Second, minExportPace}} {
		if got := exportPace(c.n, c.every); got != c.want {
			t.Errorf("exportPace(%d, %v) = %g, want %g", c.n, c.every, got, c.want)
		}
	}
}

// TestDropExported reads an export's CSV: every listed ID leaves want,
// at the pace asked, and a body that is not an export is an error.
func TestDropExported(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,issuer,seq,timestamp,timestamp_ns,position,confirmed,confirmed_at,confirmed_at_ns,payload_encoding,payload\n")
	want := map[dag.ID]int{}
	for i := range 1000 {
		var id dag.ID
		id[0], id[1] = byte(i>>8), byte(i)
		if i%10 != 0 {
			want[id] = i
		}
		fmt.Fprintf(&b, "%s,%s,%d,2026-01-01T00:00:00Z,1,%d,true,,,json,\"{\"\"a\"\":1,\"\"b\"\":2}\"\n", id, id, i, i)
	}
	var ghost dag.ID
	ghost[5] = 1
	want[ghost] = -1
	start := time.Now()
	if err := dropExported(context.Background(), strings.NewReader(b.String()), want, 4000); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("1,000 records at 4,000 a second read in %v", el)
	}
	if len(want) != 1 || want[ghost] != -1 {
		t.Errorf("left %v, want only the ghost", want)
	}
	for _, bad := range []string{"not,an,export\n", "id,issuer\nzz,1\n"} {
		if err := dropExported(context.Background(), strings.NewReader(bad), map[dag.ID]int{}, 0); err == nil {
			t.Errorf("%q read as an export", bad)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := dropExported(ctx, strings.NewReader(b.String()), map[dag.ID]int{}, 100); err == nil {
		t.Error("a slow read went on after its context ended")
	}
}
