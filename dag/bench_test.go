package dag

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchMessages returns n signed 295-byte encodings (100-byte payload) from
// 64 issuers, as devices would send them.
func benchMessages(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		m := &Message{Version: Version, Network: testNet.Network, Seq: uint64(i), Timestamp: int64(i),
			Payload: bytes.Repeat([]byte{byte(i)}, 100)}
		m.Parents[0][0], m.Parents[1][0] = byte(i), byte(i>>8)
		m.Sign(key(i % 64))
		out[i] = m.Bytes()
	}
	return out
}

// BenchmarkDecodeVerify: decode, proof of work and signature, one at a time.
func BenchmarkDecodeVerify(b *testing.B) {
	encs := benchMessages(1024)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m, err := testNet.Decode(encs[i%len(encs)])
		if err != nil {
			b.Fatal(err)
		}
		if err := testNet.Check(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkDecodeVerifyBatch: the same with batched signature checks and
// cached issuer keys, as the node's verifiers run.
func BenchmarkDecodeVerifyBatch(b *testing.B) {
	for _, size := range []int{64, 256} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			encs := benchMessages(1024)
			v := NewVerifier(nil, nil)
			msgs := make([]*Message, size)
			errs := make([]error, size)
			b.ResetTimer()
			n := 0
			for b.Loop() {
				for j := range msgs {
					m, err := testNet.Decode(encs[(n+j)%len(encs)])
					if err != nil {
						b.Fatal(err)
					}
					if err := testNet.CheckCheap(m); err != nil {
						b.Fatal(err)
					}
					msgs[j] = m
				}
				v.Verify(msgs, errs)
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				n += size
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/msg")
		})
	}
}

// stream pre-builds the messages of a steady load the way a node would
// issue them: a second Core, fed the same messages, supplies the parents,
// two tips drawn uniformly from its pool. Every 10th message is validator
// 0's or 1's (0's alone with one validator); when lag > 0, every 10th is also validator 2's, approving the
// messages lag positions back, which holds an unconfirmed backlog of about
// lag messages (threshold 3 of 4). Device keys never overlap validator keys.
func stream(tb testing.TB, r *rand.Rand, vs []Validator, n, lag int) []*Message {
	gen := newCoreT(tb, Config{Validators: vs, MaxTips: 1 << 20})
	now := time.Unix(1, 0)
	tip := func() ID { return gen.Tip(r.IntN(gen.TipCount())) }
	all := make([]*Message, 0, n)
	for i := 0; i < n; i++ {
		var m *Message
		switch {
		case lag > 0 && i%10 == 7 && i > lag:
			m = msg(vs[2].Key, uint64(i), int64(i), all[i-lag].ID(), all[i-lag-1].ID())
		case i%10 == 3:
			m = msg(vs[(i/10)%min(2, len(vs))].Key, uint64(i), int64(i), tip(), tip())
		default:
			m = msg(pub(1000+i%1000), uint64(i), int64(i), tip(), tip())
		}
		all = append(all, m)
		if m.Issuer == vs[min(2, len(vs)-1)].Key && lag > 0 {
			continue // never a parent: the generator's pool must not offer it
		}
		if st, err := gen.Add(now, m); st != Solid {
			tb.Fatal(st, err)
		}
		if i%256 == 0 {
			gen.Ready()
		}
	}
	return all
}

// BenchmarkCoreStep: the DAG core alone, solidification, tip pool and
// confirmation, one validator confirming as it goes.
func BenchmarkCoreStep(b *testing.B) {
	vs := validators(1)
	c := newCoreT(b, Config{Validators: vs})
	msgs := stream(b, rand.New(rand.NewPCG(1, 1)), vs, b.N, 0)
	now := time.Unix(1, 0)
	b.ResetTimer()
	for i, m := range msgs {
		if st, err := c.Add(now, m); st != Solid {
			b.Fatal(st, err)
		}
		if i%256 == 255 {
			c.Ready()
		}
		if i%4096 == 4095 {
			now = now.Add(10 * time.Millisecond)
			c.Tick(now)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkConfirmBacklog: the cost per message while the unconfirmed
// region holds about backlog messages. Four validators, threshold 3 of 4:
// validators 0 and 1 approve new messages at once, validator 2 approves
// messages backlog positions old, so everything older is confirmed and
// everything newer is not. The cost must not depend on the backlog.
func BenchmarkConfirmBacklog(b *testing.B) {
	for _, backlog := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			vs := validators(4)
			c := newCoreT(b, Config{Validators: vs, MaxTips: 1 << 20})
			warm := backlog + 20_000
			msgs := stream(b, rand.New(rand.NewPCG(2, 2)), vs, warm+b.N, backlog)
			now := time.Unix(1, 0)
			add := func(m *Message) {
				if st, err := c.Add(now, m); st != Solid {
					b.Fatal(st, err)
				}
			}
			for _, m := range msgs[:warm] {
				add(m)
			}
			c.Ready()
			before := c.Stats()
			b.ResetTimer()
			for i, m := range msgs[warm:] {
				add(m)
				if i%256 == 255 {
					c.Ready()
				}
			}
			b.StopTimer()
			after := c.Stats()
			// Validator 2's own messages are never approved by the others:
			// they stay unconfirmed by construction and are no backlog.
			held := after.Unconfirmed
			for _, m := range msgs {
				if m.Issuer == vs[2].Key {
					held--
				}
			}
			if held < backlog/2 || held > backlog*2 {
				b.Fatalf("backlog %d, want about %d", held, backlog)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(after.WalkSteps-before.WalkSteps)/float64(b.N), "steps/msg")
			b.ReportMetric(float64(held), "backlog")
		})
	}
}
