package proof

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/weftnet/weft/dag"
)

// vectors reads the blocks fenced ```kind of docs/PROTOCOL.md, field by field.
func vectors(t *testing.T, kind string) []map[string]string {
	t.Helper()
	f, err := os.Open("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]string
	var cur map[string]string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "```"+kind:
			cur = map[string]string{}
		case line == "```" && cur != nil:
			out = append(out, cur)
			cur = nil
		case cur != nil:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("bad %s line %q", kind, line)
			}
			cur[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("docs/PROTOCOL.md has no %s block", kind)
	}
	return out
}

func hexField(t *testing.T, v map[string]string, k string) []byte {
	t.Helper()
	b, err := hex.DecodeString(v[k])
	if err != nil || v[k] == "" {
		t.Fatalf("vector %q: field %s: %q %v", v["name"], k, v[k], err)
	}
	return b
}

func idField(t *testing.T, v map[string]string, k string) dag.ID {
	return dag.ID(hexField(t, v, k))
}

func TestTreeVectors(t *testing.T) {
	for _, v := range vectors(t, "tree-vector") {
		var ids, want []dag.ID
		for i := 0; v[fmt.Sprintf("leaf%d", i)] != ""; i++ {
			ids = append(ids, idField(t, v, fmt.Sprintf("leaf%d", i)))
			want = append(want, blake3.Sum256([]byte(fmt.Sprintf("leaf %d", i))))
		}
		SortIDs(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("%s: the leaves are not BLAKE3(\"leaf \" || i), sorted", v["name"])
		}
		if got := LeafHash(ids[0]); got != Hash(idField(t, v, "leaf_hash0")) {
			t.Fatalf("%s: leaf hash %s", v["name"], got)
		}
		tr, err := NewTree(ids)
		if err != nil {
			t.Fatal(err)
		}
		root := Hash(idField(t, v, "root"))
		if tr.Root() != root {
			t.Fatalf("%s: root %s, the document says %s", v["name"], tr.Root(), root)
		}
		at, _ := strconv.Atoi(v["path_of"])
		var path []Hash
		for i := 0; v[fmt.Sprintf("path%d", i)] != ""; i++ {
			path = append(path, Hash(idField(t, v, fmt.Sprintf("path%d", i))))
		}
		if got := tr.Path(at); !slices.Equal(got, path) {
			t.Fatalf("%s: path of leaf %d is %v", v["name"], at, got)
		}
		if err := VerifyPath(ids[at], uint64(at), uint64(len(ids)), path, root); err != nil {
			t.Fatalf("%s: %v", v["name"], err)
		}
	}
}

func TestCheckpointVectors(t *testing.T) {
	for _, v := range vectors(t, "checkpoint-vector") {
		index, _ := strconv.ParseUint(v["index"], 10, 64)
		from, _ := strconv.ParseInt(v["from"], 10, 64)
		count, _ := strconv.ParseUint(v["count"], 10, 32)
		c := Checkpoint{Index: index, Prev: idField(t, v, "prev"), From: from, Count: uint32(count), Root: Hash(idField(t, v, "root"))}
		payload := hexField(t, v, "payload")
		if got := c.Encode(); !bytes.Equal(got, payload) {
			t.Fatalf("%s: encodes to %x", v["name"], got)
		}
		if got, err := DecodeCheckpoint(payload); err != nil || got != c {
			t.Fatalf("%s: decodes to %+v, %v", v["name"], got, err)
		}
	}
}

// TestProofVectors verifies the document of each proof vector against its
// validators, checks that it is the canonical JSON this code writes, that
// its checkpoint's payload is the checkpoint vector's and its message
// section 7's telemetry vector.
func TestProofVectors(t *testing.T) {
	cps := vectors(t, "checkpoint-vector")
	var telemetry []byte
	for _, v := range vectors(t, "vector") {
		if v["name"] == "telemetry" {
			telemetry = hexField(t, v, "encoding")
		}
	}
	for _, v := range vectors(t, "proof-vector") {
		key, w, _ := strings.Cut(v["validator"], ":")
		weight, _ := strconv.ParseUint(w, 10, 64)
		k, err := dag.ParseID(key)
		if err != nil {
			t.Fatal(err)
		}
		trust := Trust{Network: dag.NetworkIDFromName(v["network"]), Validators: []dag.Validator{{Key: dag.PublicKey(k), Weight: weight}}}
		d, err := ReadDocument(strings.NewReader(v["document"]))
		if err != nil {
			t.Fatalf("%s: %v", v["name"], err)
		}
		res, err := Verify(d, trust)
		if err != nil {
			t.Fatalf("%s: %v", v["name"], err)
		}
		if res.Weight != weight || !bytes.Equal(d.Message, telemetry) {
			t.Fatalf("%s: weight %d; message is section 7's telemetry: %v", v["name"], res.Weight, bytes.Equal(d.Message, telemetry))
		}
		b, _ := json.Marshal(d)
		if string(b) != v["document"] {
			t.Fatalf("%s: the document is not this code's JSON:\n%s", v["name"], b)
		}
		c, err := dag.Decode(d.Checkpoints[0].Checkpoint, dag.MaxPayload)
		if err != nil || !bytes.Equal(c.Payload, hexField(t, cps[0], "payload")) {
			t.Fatalf("%s: the checkpoint's payload is not the checkpoint vector's (%v)", v["name"], err)
		}
	}
}
