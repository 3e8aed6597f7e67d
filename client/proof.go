package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
	"github.com/weftnet/weft/proof"
)

// Proof returns the node's proof that message id was recorded and
// confirmed (docs/PROTOCOL.md 8.4). Until checkpoints of enough validators
// cover it the node answers an *APIError with CodeNoProof and RetryAfter.
// The document is the node's word until VerifyProof checks it.
func (c *Client) Proof(ctx context.Context, id dag.ID) (*proof.Document, error) {
	resp, _, err := c.do(ctx, http.MethodGet, wire.PathMessages+"/"+id.String()+"/proof", nil, "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readProof(resp.Body, id)
}

// ProofFor returns the proof for a message given whole: the node need not
// hold the message any more, only the checkpoints that cover it.
func (c *Client) ProofFor(ctx context.Context, raw []byte) (*proof.Document, error) {
	resp, _, err := c.do(ctx, http.MethodPost, wire.PathProofs, nil, wire.ContentMessage, raw)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readProof(resp.Body, dag.ID(pow.Hash(raw)))
}

func readProof(r io.Reader, id dag.ID) (*proof.Document, error) {
	b, err := readAll(r, proof.MaxDocumentSize)
	if err != nil {
		return nil, err
	}
	d, err := proof.ReadDocument(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if d.ID != id {
		return nil, fmt.Errorf("%w: asked for the proof of %s, got one of %s", ErrBadResponse, id, d.ID)
	}
	return d, nil
}

// VerifyProof checks a proof offline against the validators the caller
// trusts: proof.Verify. It needs no node.
func VerifyProof(d *proof.Document, trust proof.Trust) (proof.Result, error) {
	return proof.Verify(d, trust)
}
