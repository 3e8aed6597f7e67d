package bench

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

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
	var err error
	if res.ByID, err = readByID(ctx, c, acks, byID, seed, &res.Lost); err != nil {
		return nil, err
	}
	return res, nil
}

// readByID reads a random sample of n of acks one by one
// (GET /api/v1/messages/{id}) and adds to lost those the node does not
// store and lost does not hold yet. It returns how many it read.
func readByID(ctx context.Context, c *client.Client, acks []Ack, n int, seed uint64, lost *[]Ack) (int, error) {
	rng := rand.New(rand.NewPCG(seed, 0))
	read := 0
	for _, k := range rng.Perm(len(acks))[:min(n, len(acks))] {
		a := acks[k]
		m, err := c.Get(ctx, a.ID)
		switch {
		case client.IsCode(err, client.CodeNotFound) || err == nil && m.Pending:
			if !slices.Contains(*lost, a) {
				*lost = append(*lost, a)
			}
		case err != nil:
			return read, fmt.Errorf("bench: message %s: %w", a.ID, err)
		}
		read++
	}
	return read, nil
}

// CheckExported checks that the node behind c stores every message in
// acks, as CheckAcks does, but from one export of the time range their
// timestamps span (GET /api/v1/export?format=csv&from=&to=): the node
// reads and sends each message of the range once, in one stream, which
// costs it far less than a listing per device. Each acknowledged ID must
// be among the exported ones; then a sample of byID is read by ID. It
// does not count equivocations (Check.Equivocations is 0). Every ack must
// carry its Timestamp. An error is a node that did not answer, not a loss.
func CheckExported(ctx context.Context, c *client.Client, acks []Ack, byID int, seed uint64) (*Check, error) {
	return checkExported(ctx, c, acks, byID, seed, 0)
}

// checkExported is CheckExported reading the export at most pace records
// a second (0: as fast as the node sends): the node sends as the reader
// takes, so its work is spread over the time the read takes.
func checkExported(ctx context.Context, c *client.Client, acks []Ack, byID int, seed uint64, pace float64) (*Check, error) {
	res := &Check{Acks: len(acks), Lost: []Ack{}}
	if len(acks) == 0 {
		return res, nil
	}
	want := make(map[dag.ID]int, len(acks)) // index in acks
	from, to := acks[0].Timestamp, acks[0].Timestamp
	for k, a := range acks {
		if a.Timestamp <= 0 {
			return nil, fmt.Errorf("bench: acknowledgement of %s without a timestamp", a.ID)
		}
		want[a.ID] = k
		from, to = min(from, a.Timestamp), max(to, a.Timestamp)
	}
	pr, pw := io.Pipe()
	exported := make(chan error, 1)
	go func() {
		_, err := c.Export(ctx, client.TimeRange{From: time.Unix(0, from), To: time.Unix(0, to+1)}, client.FormatCSV, pw)
		pw.CloseWithError(err)
		exported <- err
	}()
	err := dropExported(ctx, pr, want, pace)
	pr.CloseWithError(errors.New("bench: export read to its end")) // unblocks the writer if dropExported stopped early
	if xerr := <-exported; err == nil {
		err = xerr
	}
	if err != nil {
		return nil, fmt.Errorf("bench: export of %d..%d: %w", from, to, err)
	}
	for _, k := range want {
		res.Lost = append(res.Lost, acks[k])
	}
	slices.SortFunc(res.Lost, func(a, b Ack) int { return a.At.Compare(b.At) })
	if res.ByID, err = readByID(ctx, c, acks, byID, seed, &res.Lost); err != nil {
		return nil, err
	}
	return res, nil
}

// dropExported reads an export in CSV, at most pace records a second (0:
// no bound), and deletes from want every ID it lists (the first column).
func dropExported(ctx context.Context, r io.Reader, want map[dag.ID]int, pace float64) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	header := true
	start := time.Now()
	for n := 0; ; n++ {
		if pace > 0 && n%256 == 0 {
			if ahead := time.Duration(float64(n)/pace*float64(time.Second)) - time.Since(start); ahead > 0 {
				t := time.NewTimer(ahead)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
			}
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if header {
			if len(rec) == 0 || rec[0] != "id" {
				return fmt.Errorf("bench: the export's header is %q, want it to begin with id", rec)
			}
			header = false
			continue
		}
		id, err := dag.ParseID(rec[0])
		if err != nil {
			return fmt.Errorf("bench: the export lists %q: %w", rec[0], err)
		}
		delete(want, id)
	}
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
