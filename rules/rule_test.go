package rules

import (
	"errors"
	"strings"
	"testing"
)

func logRule(name, cond string) Rule {
	return Rule{Name: name, Condition: cond, Action: Action{Kind: KindLog}}
}

func TestCompileRefuses(t *testing.T) {
	hook := func(url, secret string) Rule {
		return Rule{Name: "w", Condition: "true", Action: Action{Kind: KindWebhook, URL: url, Secret: secret}}
	}
	const secret = "0123456789abcdef"
	for _, c := range []struct {
		name    string
		rule    Rule
		compile bool   // a *CompileError, not a definition error
		want    string // in the message
	}{
		{"syntax", logRule("r", "payload.temp_c >"), true, "Syntax error"},
		{"undeclared", logRule("r", "temperature > 8.0"), true, "undeclared reference to 'temperature'"},
		{"not bool", logRule("r", "seq + 1u"), true, "condition is of type uint, want bool"},
		{"dyn not bool", logRule("r", "payload.alarm"), true, "condition is of type dyn, want bool"},
		{"types mismatch", logRule("r", `issuer == 3`), true, "no matching overload"},
		{"too long", logRule("r", "true"+strings.Repeat(" && true", MaxConditionLen/8)), true, "longer than 4096 bytes"},
		{"too deep", logRule("r", strings.Repeat("(", 40)+"true"+strings.Repeat(")", 40)), true, "recursion"},
		{"empty condition", logRule("r", ""), true, "Syntax error"},
		{"empty name", logRule("", "true"), false, "name"},
		{"upper-case name", logRule("Hot", "true"), false, "name"},
		{"long name", logRule(strings.Repeat("a", 65), "true"), false, "name"},
		{"no kind", Rule{Name: "r", Condition: "true"}, false, "no action kind"},
		{"url on log", Rule{Name: "r", Condition: "true", Action: Action{Kind: KindLog, URL: "http://x"}}, false, "belong to webhook"},
		{"relative url", hook("/hook", secret), false, "absolute http or https"},
		{"ftp url", hook("ftp://example.com/", secret), false, "absolute http or https"},
		{"short secret", hook("https://example.com/", "short"), false, "secret shorter than 16"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.rule)
			if err == nil {
				t.Fatal("compiled")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v: not ErrInvalid", err)
			}
			var ce *CompileError
			if errors.As(err, &ce) != c.compile {
				t.Errorf("%v: a CompileError: %v, want %v", err, !c.compile, c.compile)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// TestConditions evaluates conditions over every variable on messages the
// test knows the fields of.
func TestConditions(t *testing.T) {
	devs := registry(map[byte]Device{1: {Name: "fridge-1", Tags: []string{"cold-chain", "site-a"}}})
	json := testMessage(7, 1, `{"temp_c": 9.5, "door": {"open": true}, "count": 3, "ids": [1, 2]}`)
	binary := testMessage(8, 2, "\x00\x01not json")
	id7 := json.Msg.ID().String()
	for _, c := range []struct {
		cond string
		m    Message
		want bool
		err  string // an evaluation error containing this
	}{
		{`payload.temp_c > 8.0 && "cold-chain" in tags`, json, true, ""},
		{`payload.temp_c > 8.0`, binary, false, "no such key"}, // null has no fields
		// CEL's && is false when either side is, even if the other errs.
		{`payload.temp_c > 8.0 && "cold-chain" in tags`, binary, false, ""},
		{`payload.temp_c > 10.0`, json, false, ""},
		{`payload.temp_c > 8`, json, true, ""}, // a double against an int literal
		{`payload.count == 3`, json, true, ""},
		{`payload.door.open == true`, json, true, ""},
		{`payload.ids.exists(i, i == 2.0)`, json, true, ""},
		{`has(payload.humidity)`, json, false, ""},
		{`payload.humidity > 50.0`, json, false, "no such key: humidity"},
		{`payload == null`, binary, true, ""},
		{`payload == null`, json, false, ""},
		{`payload_raw.size() == 10`, binary, true, ""},
		{`payload_raw == b"\x00\x01not json"`, binary, true, ""},
		{`id == "` + id7 + `"`, json, true, ""},
		{`issuer.startsWith("01") && size(issuer) == 64`, json, true, ""},
		{`seq == 8u`, json, true, ""},
		{`confirmation == 7u && position == 1007u`, json, true, ""},
		{`timestamp == timestamp("2026-12-01T12:00:07Z")`, json, true, ""},
		{`confirmed_at - timestamp == duration("1s")`, json, true, ""},
		{`timestamp.getHours() == 12`, json, true, ""},
		{`device == "fridge-1"`, json, true, ""},
		{`device == "" && size(tags) == 0`, binary, true, ""},
		{`"site-b" in tags`, json, false, ""},
		{`[1, 2, 3].map(x, x * 2).size() == 3`, json, true, ""},
		{`payload.ids.all(a, payload.ids.all(b, a != b || a == b))`, json, true, ""},
	} {
		t.Run(c.cond, func(t *testing.T) {
			res, err := Test(logRule("r", c.cond), []Message{c.m}, devs)
			if err != nil {
				t.Fatal(err)
			}
			if c.err != "" {
				if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Err, c.err) {
					t.Fatalf("errors %+v, want one with %q", res.Errors, c.err)
				}
				return
			}
			if len(res.Errors) > 0 {
				t.Fatalf("errors %+v", res.Errors)
			}
			if got := len(res.Matches) == 1; got != c.want {
				t.Fatalf("matched %v, want %v", got, c.want)
			}
		})
	}
}

// TestCostLimit: a condition that does too much on a message stops with an
// error, counted like any other.
func TestCostLimit(t *testing.T) {
	big := `{"xs":[` + strings.TrimSuffix(strings.Repeat("1,", 300), ",") + `]}`
	res, err := Test(logRule("r", `payload.xs.all(a, payload.xs.all(b, a == b))`), []Message{testMessage(0, 1, big)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Err, "cost limit") {
		t.Fatalf("errors %+v, want the cost limit's", res.Errors)
	}
}

// TestTest replays the cold-chain rule and checks every field of a match.
func TestTest(t *testing.T) {
	devs := registry(map[byte]Device{1: {Name: "fridge-1", Tags: []string{"cold-chain"}}, 2: {Name: "office", Tags: []string{"hvac"}}})
	msgs := []Message{
		testMessage(0, 1, `{"temp_c": 4.0}`),
		testMessage(1, 1, `{"temp_c": 8.5}`),
		testMessage(2, 2, `{"temp_c": 30.0}`), // not cold-chain
		testMessage(3, 1, `{"humidity": 40}`), // no temp_c: an error
		testMessage(4, 1, `{"temp_c": 12.25}`),
	}
	res, err := Test(logRule("cold", `payload.temp_c > 8.0 && "cold-chain" in tags`), msgs, devs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Evaluated != 5 || len(res.Matches) != 2 || len(res.Errors) != 1 {
		t.Fatalf("evaluated %d, %d matches, %d errors; want 5, 2, 1", res.Evaluated, len(res.Matches), len(res.Errors))
	}
	if e := res.Errors[0]; e.Confirmation != 3 || e.ID != msgs[3].Msg.ID().String() {
		t.Errorf("error %+v, want message 3's", e)
	}
	m := res.Matches[0]
	d := m.Message
	if m.Rule != "cold" || m.Delivery != "cold:1" || d.Confirmation != 1 || d.Position != 1001 || d.Seq != 2 ||
		d.ID != msgs[1].Msg.ID().String() || d.Issuer != msgs[1].Msg.Issuer.String() || d.Device != "fridge-1" ||
		len(d.Tags) != 1 || d.Tags[0] != "cold-chain" || !d.Timestamp.Equal(testEpoch.Add(1e9)) ||
		!d.ConfirmedAt.Equal(testEpoch.Add(2e9)) || string(d.Payload) != `{"temp_c": 8.5}` || d.PayloadEncoding != EncodingJSON {
		t.Errorf("match %+v", m)
	}
	if res.Matches[1].Message.Confirmation != 4 {
		t.Errorf("second match at %d, want 4", res.Matches[1].Message.Confirmation)
	}
	if _, err := Test(logRule("cold", `payload.temp_c >`), msgs, devs); !errors.As(err, new(*CompileError)) {
		t.Errorf("a rule that does not compile: %v", err)
	}
}

// TestPayloadParsedLazily: a condition that does not read the payload
// leaves it unparsed; one that does parses it once for every rule.
func TestPayloadParsedLazily(t *testing.T) {
	m := testMessage(0, 1, `{"temp_c": 9}`)
	v := newVars(&m, nil)
	seqRule, _ := Compile(logRule("a", `seq > 0u`))
	hot, _ := Compile(logRule("b", `payload.temp_c > 8.0`))
	if ok, err := seqRule.prog.match(v); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if v.payload != nil {
		t.Fatal("payload parsed for a condition that does not read it")
	}
	if ok, err := hot.prog.match(v); !ok || err != nil {
		t.Fatal(ok, err)
	}
	parsed := v.payload
	if parsed == nil || !v.payloadJSON {
		t.Fatal("payload not parsed")
	}
	if ok, err := hot.prog.match(v); !ok || err != nil || v.payload != parsed {
		t.Fatal("payload parsed again", ok, err)
	}
}

func TestDocumentBase64(t *testing.T) {
	res, err := Test(logRule("r", "true"), []Message{testMessage(0, 1, "\xff\x00")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := res.Matches[0].Message
	if d.PayloadEncoding != EncodingBase64 || string(d.Payload) != `"/wA="` || d.Tags == nil {
		t.Errorf("payload %s %s, tags %v", d.PayloadEncoding, d.Payload, d.Tags)
	}
}
