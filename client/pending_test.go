package client

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// TestPending: 202 is an acceptance, not a refusal: SubmitOutcome and
// batches report it without an error, Submit with ErrPending.
func TestPending(t *testing.T) {
	a, b := []byte("held for its parents"), []byte("stored")
	ida, idb := dag.ID(pow.Hash(a)), dag.ID(pow.Hash(b))
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case wire.PathMessages:
			w.Header().Set("Location", wire.PathMessages+"/"+ida.String())
			wire.WriteJSON(w, http.StatusAccepted, wire.Submitted{ID: ida.String(), Pending: true})
		case wire.PathBatch:
			wire.WriteJSON(w, http.StatusOK, wire.BatchResults{Results: []wire.BatchResult{
				{ID: ida.String(), Status: http.StatusAccepted}, {ID: idb.String(), Status: http.StatusCreated}}})
		}
	})
	ctx := context.Background()
	s, err := c.SubmitOutcome(ctx, a)
	if err != nil || s != (Submission{ID: ida, Pending: true}) {
		t.Fatalf("submit: %+v, %v", s, err)
	}
	if id, err := c.Submit(ctx, a); !errors.Is(err, ErrPending) || id != ida {
		t.Fatalf("Submit: %s, %v; want the id and ErrPending", id, err)
	}
	res, err := c.SubmitBatch(ctx, [][]byte{a, b})
	if err != nil || res[0] != (BatchResult{ID: ida, Status: 202, Pending: true}) || res[1] != (BatchResult{ID: idb, Status: 201}) {
		t.Fatalf("batch: %+v, %v", res, err)
	}
}
