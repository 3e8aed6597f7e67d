package bench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/weftnet/weft/dag"
)

// verifyBatch is the batch size of the verification measurement, the
// node's own (node/pipeline.go).
const verifyBatch = 256

// measureVerify returns how many ed25519 signatures a second this machine
// checks with dag.Verifier in batches of verifyBatch, on GOMAXPROCS
// goroutines at once, over about d: the ceiling that signature checking
// alone puts on a node here.
func measureVerify(ctx context.Context, d time.Duration, seed uint64) (float64, error) {
	msgs := make([]*dag.Message, verifyBatch)
	payload := make([]byte, DefaultPayload)
	for k := range msgs {
		key := ed25519.NewKeyFromSeed(deriveSeed("verify", seed, k))
		m := &dag.Message{Version: dag.Version, Network: dag.NetworkIDFromName("weft-bench-verify"),
			Seq: uint64(k), Timestamp: int64(k), Payload: payload}
		m.Sign(key)
		m.ID() // fill the caches: the messages are shared by the workers
		msgs[k] = m
	}
	keys := dag.NewKeyCache(4096)
	workers := runtime.GOMAXPROCS(0)
	counts := make([]int, workers)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := dag.NewVerifier(keys, nil)
			errs := make([]error, len(msgs))
			for first := true; first || (time.Now().Before(deadline) && ctx.Err() == nil); first = false {
				v.Verify(msgs, errs)
				for _, err := range errs {
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
						return
					}
				}
				counts[w] += len(msgs)
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		return 0, fmt.Errorf("bench: verification measurement: %w", failed)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	return float64(total) / time.Since(start).Seconds(), nil
}
