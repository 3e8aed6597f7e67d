package proof

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/weftnet/weft/dag"
)

// DocumentVersion is the version of the proof document this code writes
// and reads.
const DocumentVersion = 1

// MaxDocumentSize bounds a proof document's JSON: MaxValidators checkpoints,
// each a message of up to 64 KiB and a path of MaxPath hashes, in hex.
const MaxDocumentSize = 2 * (1 + dag.MaxValidators) * (dag.MinSize + dag.MaxPayload + MaxPath*70)

// Document is a proof that a message was recorded and confirmed: the
// message, and for each validator that vouches for it, the checkpoint that
// covers it and the path from its leaf to that checkpoint's root. It is
// JSON; docs/PROTOCOL.md 8.4 specifies it.
type Document struct {
	Version int
	// ID is the message's ID, as the document claims it.
	ID dag.ID
	// Message is the message's encoding.
	Message     []byte
	Checkpoints []Attestation
}

// Attestation is one validator's part of a proof.
type Attestation struct {
	// Validator is the checkpoint's issuer.
	Validator dag.PublicKey
	// ID is the checkpoint message's ID, as the document claims it.
	ID dag.ID
	// Checkpoint is the checkpoint message's encoding, signature included.
	Checkpoint []byte
	// Leaf is the index of the message's id among the checkpoint's leaves.
	Leaf uint64
	// Path leads from the leaf to the checkpoint's root (Tree.Path).
	Path []Hash
}

// The JSON forms: every byte string in lower-case hex.
type (
	documentJSON struct {
		Version     int               `json:"version"`
		ID          string            `json:"id"`
		Message     string            `json:"message"`
		Checkpoints []attestationJSON `json:"checkpoints"`
	}
	attestationJSON struct {
		Validator  string   `json:"validator"`
		ID         string   `json:"id"`
		Checkpoint string   `json:"checkpoint"`
		Leaf       uint64   `json:"leaf"`
		Path       []string `json:"path"`
	}
)

// ErrDocument: bytes are not a proof document of this version.
var ErrDocument = errors.New("proof: malformed proof document")

// MarshalJSON writes the document in its documented JSON form.
func (d *Document) MarshalJSON() ([]byte, error) {
	j := documentJSON{
		Version: d.Version, ID: d.ID.String(), Message: hex.EncodeToString(d.Message),
		Checkpoints: make([]attestationJSON, len(d.Checkpoints)),
	}
	for i, a := range d.Checkpoints {
		path := make([]string, len(a.Path))
		for k, h := range a.Path {
			path[k] = h.String()
		}
		j.Checkpoints[i] = attestationJSON{
			Validator: a.Validator.String(), ID: a.ID.String(), Checkpoint: hex.EncodeToString(a.Checkpoint),
			Leaf: a.Leaf, Path: path,
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the documented JSON form. It checks the form only
// (fields, hex, sizes); Verify checks what the document claims.
func (d *Document) UnmarshalJSON(b []byte) error {
	var j documentJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: %v", ErrDocument, err)
	}
	if j.Version != DocumentVersion {
		return fmt.Errorf("%w: version %d, this verifier reads %d", ErrDocument, j.Version, DocumentVersion)
	}
	if len(j.Checkpoints) > dag.MaxValidators {
		return fmt.Errorf("%w: %d checkpoints, at most %d", ErrDocument, len(j.Checkpoints), dag.MaxValidators)
	}
	out := Document{Version: j.Version, Checkpoints: make([]Attestation, len(j.Checkpoints))}
	var err error
	if out.ID, err = dag.ParseID(j.ID); err != nil {
		return fmt.Errorf("%w: id: %v", ErrDocument, err)
	}
	if out.Message, err = hex.DecodeString(j.Message); err != nil {
		return fmt.Errorf("%w: message: %v", ErrDocument, err)
	}
	for i, a := range j.Checkpoints {
		o := &out.Checkpoints[i]
		v, err := dag.ParseID(a.Validator)
		if err != nil {
			return fmt.Errorf("%w: checkpoint %d: validator: %v", ErrDocument, i, err)
		}
		o.Validator, o.Leaf = dag.PublicKey(v), a.Leaf
		if o.ID, err = dag.ParseID(a.ID); err != nil {
			return fmt.Errorf("%w: checkpoint %d: id: %v", ErrDocument, i, err)
		}
		if o.Checkpoint, err = hex.DecodeString(a.Checkpoint); err != nil {
			return fmt.Errorf("%w: checkpoint %d: %v", ErrDocument, i, err)
		}
		if len(a.Path) > MaxPath {
			return fmt.Errorf("%w: checkpoint %d: path of %d hashes, at most %d", ErrDocument, i, len(a.Path), MaxPath)
		}
		o.Path = make([]Hash, len(a.Path))
		for k, s := range a.Path {
			h, err := dag.ParseID(s)
			if err != nil {
				return fmt.Errorf("%w: checkpoint %d: path %d: %v", ErrDocument, i, k, err)
			}
			o.Path[k] = Hash(h)
		}
	}
	*d = out
	return nil
}

// ReadDocument reads one proof document of at most MaxDocumentSize bytes.
func ReadDocument(r io.Reader) (*Document, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxDocumentSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: over %d bytes", ErrDocument, MaxDocumentSize)
	}
	d := new(Document)
	if err := json.Unmarshal(bytes.TrimSpace(b), d); err != nil {
		if !errors.Is(err, ErrDocument) {
			err = fmt.Errorf("%w: %v", ErrDocument, err)
		}
		return nil, err
	}
	return d, nil
}
