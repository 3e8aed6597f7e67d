package wire

import (
	"bufio"
	"encoding/json"
	"github.com/weftnet/weft/dag"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
)

// docTable reads the table of outcomes of docs/API.md: the rows of the
// first Markdown table after the heading "## Errors", as {status, code}.
func docTable(t *testing.T) [][2]string {
	t.Helper()
	f, err := os.Open("../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][2]string
	in, table := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "## "):
			if table {
				return rows
			}
			in = line == "## Errors"
		case in && strings.HasPrefix(line, "|"):
			table = true
			cells := strings.Split(strings.Trim(line, "|"), "|")
			if len(cells) < 3 {
				t.Fatalf("docs/API.md: a row of %d cells: %s", len(cells), line)
			}
			st, code := strings.TrimSpace(cells[0]), strings.Trim(strings.TrimSpace(cells[1]), "`")
			if st == "status" || strings.Trim(st, "-:") == "" {
				continue // the header and its rule
			}
			rows = append(rows, [2]string{st, code})
		case table:
			return rows
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestDocTableMatches: docs/API.md's table lists exactly the codes of
// Codes, with the same statuses, in the same order, each once.
func TestDocTableMatches(t *testing.T) {
	doc := docTable(t)
	want := Codes()
	if len(doc) != len(want) {
		t.Errorf("docs/API.md lists %d codes, the table %d", len(doc), len(want))
	}
	seen := map[string]bool{}
	for i, row := range doc {
		if seen[row[1]] {
			t.Errorf("docs/API.md lists %q twice", row[1])
		}
		seen[row[1]] = true
		if i >= len(want) {
			t.Errorf("docs/API.md: %q is not in the table", row[1])
			continue
		}
		if row[1] != want[i].Code || row[0] != strconv.Itoa(want[i].Status) {
			t.Errorf("docs/API.md row %d: %s %s, the table has %d %s", i+1, row[0], row[1], want[i].Status, want[i].Code)
		}
	}
	for _, c := range want[min(len(doc), len(want)):] {
		t.Errorf("docs/API.md does not list %d %s", c.Status, c.Code)
	}
}

func TestStatus(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Codes() {
		if seen[c.Code] {
			t.Errorf("%q twice in the table", c.Code)
		}
		seen[c.Code] = true
		if Status(c.Code) != c.Status || !Known(c.Code) || c.Meaning == "" {
			t.Errorf("%+v: Status %d, Known %v", c, Status(c.Code), Known(c.Code))
		}
		if http.StatusText(c.Status) == "" {
			t.Errorf("%+v: not an HTTP status", c)
		}
	}
	if Status("no-such-code") != http.StatusInternalServerError || Known("no-such-code") {
		t.Error("an unknown code is not 500")
	}
	cs := Codes()
	cs[0].Status = 0
	if Codes()[0].Status == 0 {
		t.Error("Codes returns the table itself")
	}
}

func TestWriteError(t *testing.T) {
	for _, tc := range []struct {
		code       string
		retryAfter string
	}{{CodeRateLimited, "1"}, {CodeOverloaded, "1"}, {CodeBadSignature, ""}} {
		w := httptest.NewRecorder()
		WriteError(w, Status(tc.code), tc.code, "why")
		if w.Code != Status(tc.code) || w.Header().Get("Retry-After") != tc.retryAfter ||
			w.Header().Get("Content-Type") != "application/json" ||
			w.Body.String() != `{"error":{"code":"`+tc.code+`","message":"why"}}`+"\n" {
			t.Errorf("%s: %d %v %q", tc.code, w.Code, w.Header(), w.Body)
		}
	}
}

// TestDocJSONExamples: every ```json block of docs/API.md is valid JSON, so
// that a reader can paste it and a client written from the page parses it.
func TestDocJSONExamples(t *testing.T) {
	b, err := os.ReadFile("../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```json\n")
	if len(blocks) < 5 {
		t.Fatalf("found %d JSON examples in docs/API.md", len(blocks)-1)
	}
	for i, blk := range blocks[1:] {
		end := strings.Index(blk, "```")
		if end < 0 {
			t.Fatalf("JSON example %d is not closed", i+1)
		}
		ex := blk[:end]
		var obj map[string]any
		if err := json.Unmarshal([]byte(ex), &obj); err != nil {
			t.Errorf("JSON example %d of docs/API.md is not valid JSON (%v):\n%s", i+1, err, ex)
			continue
		}
		// An example that names a network gives that network's id.
		name, _ := obj["network"].(string)
		id, _ := obj["network_id"].(string)
		if name != "" && id != "" && id != FormatNetworkID(dag.NetworkIDFromName(name)) {
			t.Errorf("JSON example %d: network_id %s is not the id of %q (%s)", i+1, id, name, FormatNetworkID(dag.NetworkIDFromName(name)))
		}
	}
}
