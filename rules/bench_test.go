package rules

import (
	"fmt"
	"testing"

	"github.com/rs/zerolog"
)

// benchRules are ten conditions of the kinds operators write.
var benchRules = []string{
	`payload.temp_c > 8.0 && "cold-chain" in tags`,
	`payload.temp_c < -30.0`,
	`device == "fridge-7"`,
	`has(payload.door) && payload.door == "open"`,
	`int(payload.n) % 1000 == 0`,
	`"site-b" in tags && payload.temp_c > 25.0`,
	`seq % 10000u == 0u`,
	`timestamp.getHours() == 3 && payload.temp_c > 5.0`,
	`size(payload_raw) > 900`,
	`payload.battery_mv < 2800.0`,
}

// benchPayload is a reading of the size devices send: about 90 bytes.
func benchPayload(i int) string {
	return fmt.Sprintf(`{"temp_c":%d.5,"humidity":41,"battery_mv":%d,"door":"closed","n":%d}`, i%12, 2790+i%400, i)
}

var benchDevices = registry(map[byte]Device{1: {Name: "fridge-1", Tags: []string{"cold-chain", "site-a"}}})

// BenchmarkEval is one rule on one message, all costs in: the message's
// variables built, its payload parsed, the registry asked.
func BenchmarkEval(b *testing.B) {
	for _, cond := range []string{benchRules[0], benchRules[6]} {
		b.Run(cond, func(b *testing.B) {
			c, err := Compile(logRule("r", cond))
			if err != nil {
				b.Fatal(err)
			}
			m := testMessage(9, 1, benchPayload(9))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.prog.match(newVars(&m, benchDevices)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEval10Rules is the ten rules on one message, sharing its parsed
// payload, as the scanner runs them; ns/rule is the cost per message per
// rule.
func BenchmarkEval10Rules(b *testing.B) {
	var cs []*Compiled
	for i, cond := range benchRules {
		c, err := Compile(logRule(fmt.Sprintf("r%d", i), cond))
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	m := testMessage(9, 1, benchPayload(9))
	b.ReportAllocs()
	for b.Loop() {
		v := newVars(&m, benchDevices)
		for _, c := range cs {
			if _, err := c.prog.match(v); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(cs)), "ns/rule")
}

// BenchmarkEngine is the engine's scanner over an in-memory confirmation
// order, with the ten rules (eight log and two webhook rules, not
// delivered: their matches go to the outbox); an op is one confirmed
// message, so ns/op is the engine's CPU per message.
func BenchmarkEngine(b *testing.B) {
	src := &memSource{}
	var rules []Rule
	for i, cond := range benchRules {
		r := logRule(fmt.Sprintf("r%d", i), cond)
		if i < 2 {
			r = webhookRule(r.Name, cond, "http://127.0.0.1:1/")
		}
		rules = append(rules, r)
	}
	cfg := Config{Source: src, Store: &MemStore{}, Lookup: benchDevices, Log: zerolog.Nop(), OutboxBytes: 1 << 30}
	e, err := New(cfg, rules)
	if err != nil {
		b.Fatal(err)
	}
	ps := make([]string, b.N)
	for i := range ps {
		ps[i] = benchPayload(i)
	}
	src.add(1, ps...)
	b.ReportAllocs()
	b.ResetTimer()
	for {
		moved, err := e.step()
		if err != nil {
			b.Fatal(err)
		}
		if !moved {
			break
		}
	}
	b.StopTimer()
	if c := e.Stats()[0].Cursor; c != uint64(b.N) {
		b.Fatalf("cursor %d after %d messages", c, b.N)
	}
}
