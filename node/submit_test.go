package node

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weftnet/weft/dag"
)

func testMsgs(k int) []*dag.Message {
	msgs := make([]*dag.Message, k)
	for i := range msgs {
		msgs[i] = &dag.Message{Seq: uint64(i)}
	}
	return msgs
}

// TestFinishRaces: items finished by several goroutines at once each keep
// the first result, are readable as soon as any finish has returned, and
// the job ends once, after its last item.
func TestFinishRaces(t *testing.T) {
	const items, racers = 512, 4
	j := newJob(testMsgs(items))
	var released atomic.Int32
	j.release = func() { released.Add(1) }
	errOf := make([]error, racers)
	for r := range errOf {
		errOf[r] = fmt.Errorf("racer %d", r)
	}
	var wg sync.WaitGroup
	for r := 0; r < racers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range j.items {
				it := &j.items[(i*(2*r+1))%items] // each racer in its own order (odd strides: all items)
				it.finish(errOf[r])
				err, ok := it.result()
				if !ok {
					t.Errorf("item open after finish returned")
					return
				}
				known := false
				for _, e := range errOf {
					known = known || errors.Is(err, e)
				}
				if !known {
					t.Errorf("item settled with %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	<-j.done
	if got := released.Load(); got != 1 {
		t.Fatalf("release ran %d times, want once", got)
	}
	for i := range j.items {
		first, _ := j.items[i].result()
		j.items[i].finish(errors.New("late"))
		if again, _ := j.items[i].result(); again != first {
			t.Fatalf("item %d: result changed from %v to %v", i, first, again)
		}
	}
}

// TestJobAllocationsFlat: a job of 4096 messages costs a fixed number of
// allocations, whatever its size: no channel or lock per message.
func TestJobAllocationsFlat(t *testing.T) {
	msgs := testMsgs(4096)
	allocs := testing.AllocsPerRun(20, func() {
		j := newJob(msgs)
		for i := range j.items {
			j.items[i].finish(nil)
		}
		<-j.done
	})
	if allocs > 4 {
		t.Fatalf("%v allocations for a job of %d messages, want at most 4", allocs, len(msgs))
	}
}
