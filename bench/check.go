package bench

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

// Check is what CheckAcks found on a node.
type Check struct {
	// Acks is the number of acknowledged messages checked.
	Acks int `json:"acks"`
	// Lost are the acknowledged messages the node does not store.
	Lost []Ack `json:"lost"`
	// ByID is the number of messages also read one by one
	// (GET /api/v1/messages/{id}), a sample.
	ByID int `json:"by_id"`
	// Equivocations is the number of equivocations the node lists for the
	// acknowledged messages' issuers.
	Equivocations int `json:"equivocations"`
}

// CheckAcks checks that the node behind c stores every message in acks:
// it reads each issuer's listing (GET /api/v1/issuers/{key}/messages)
// from its lowest acknowledged sequence number on, and requires each
// acknowledged ID there, stored (not pending); then it reads a random
// sample of byID of them by ID. It also counts the issuers'
// equivocations, which a gateway must never cause. An error is a node
// that did not answer, not a loss.
func CheckAcks(ctx context.Context, c *client.Client, acks []Ack, byID int, seed uint64) (*Check, error) {
	res := &Check{Acks: len(acks), Lost: []Ack{}}
	byIssuer := map[dag.PublicKey][]Ack{}
	for _, a := range acks {
		byIssuer[a.Issuer] = append(byIssuer[a.Issuer], a)
	}
	for key, as := range byIssuer {
		stored, err := issuerStored(ctx, c, key, slices.MinFunc(as, func(a, b Ack) int { return cmp.Compare(a.Seq, b.Seq) }).Seq)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			if !stored[a.ID] {
				res.Lost = append(res.Lost, a)
			}
		}
		eqs, err := c.Equivocations(ctx, &key, 1000)
		if err != nil {
			return nil, fmt.Errorf("bench: equivocations of %s: %w", key, err)
		}
		res.Equivocations += len(eqs)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, k := range rng.Perm(len(acks))[:min(byID, len(acks))] {
		a := acks[k]
		m, err := c.Get(ctx, a.ID)
		switch {
		case client.IsCode(err, client.CodeNotFound) || err == nil && m.Pending:
			if !slices.Contains(res.Lost, a) {
				res.Lost = append(res.Lost, a)
			}
		case err != nil:
			return nil, fmt.Errorf("bench: message %s: %w", a.ID, err)
		}
		res.ByID++
	}
	return res, nil
}

// issuerStored returns the IDs of the stored messages of issuer key with
// a sequence number of at least from.
func issuerStored(ctx context.Context, c *client.Client, key dag.PublicKey, from uint64) (map[dag.ID]bool, error) {
	stored := map[dag.ID]bool{}
	var after *uint64
	if from > 0 {
		a := from - 1
		after = &a
	}
	for {
		page, err := c.IssuerMessages(ctx, key, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("bench: listing of %s: %w", key, err)
		}
		for _, m := range page.Messages {
			if !m.Pending {
				stored[m.ID] = true
			}
		}
		if page.NextAfterSeq == nil {
			return stored, nil
		}
		after = page.NextAfterSeq
	}
}
