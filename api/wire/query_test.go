package wire

import (
	"errors"
	"net/url"
	"testing"
)

func TestParseSize(t *testing.T) {
	for v, want := range map[string]int{"": 0, "0": 0, "10": 10, "65535": 65535} {
		if n, err := ParseSize(v); err != nil || n != want {
			t.Errorf("ParseSize(%q) = %d, %v", v, n, err)
		}
	}
	for _, v := range []string{"-1", "65536", "ten", "1e3", " 1"} {
		if _, err := ParseSize(v); !errors.Is(err, ErrQuery) {
			t.Errorf("ParseSize(%q): %v", v, err)
		}
	}
}

func TestParsePage(t *testing.T) {
	for q, want := range map[string]Page{
		"":                               {Limit: DefaultPageLimit},
		"limit=1":                        {Limit: 1},
		"limit=1000&after_seq=0":         {Limit: 1000, HasAfter: true},
		"after_seq=18446744073709551615": {Limit: DefaultPageLimit, AfterSeq: 1<<64 - 1, HasAfter: true},
	} {
		v, _ := url.ParseQuery(q)
		if p, err := ParsePage(v); err != nil || p != want {
			t.Errorf("ParsePage(%q) = %+v, %v", q, p, err)
		}
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after_seq=-1", "after_seq=18446744073709551616"} {
		v, _ := url.ParseQuery(q)
		if _, err := ParsePage(v); !errors.Is(err, ErrQuery) {
			t.Errorf("ParsePage(%q): %v", q, err)
		}
	}
}
