package node

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/weftnet/weft/dag"
)

// memRegistry returns a registry of n devices in memory only, as the node
// holds them: a name, two tags (of a few shared values) and an owner each.
func memRegistry(n int) *registry {
	r := &registry{devs: map[dag.PublicKey]*Device{}, tags: map[string]map[dag.PublicKey]struct{}{}}
	for i := range n {
		var k dag.PublicKey
		binary.BigEndian.PutUint64(k[:], uint64(i)*0x9e3779b97f4a7c15)
		r.publish(k, &Device{Key: k, Name: fmt.Sprintf("fridge %d", i), Owner: "ward 3", State: DeviceAllowed,
			Tags: []string{"cold-chain", fmt.Sprintf("site:%d", i%16)}})
	}
	return r
}

// BenchmarkRegistryMemory reports the heap a registry of 100,000 devices
// holds, per device (docs/OPERATING.md, "Devices").
func BenchmarkRegistryMemory(b *testing.B) {
	const n = 100_000
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := memRegistry(n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/device")
		runtime.KeepAlive(r)
	}
}

// BenchmarkRegistryAdmit is the registry's cost per submission at the
// edge, for a registry of 100,000 devices.
func BenchmarkRegistryAdmit(b *testing.B) {
	r := memRegistry(100_000)
	var k dag.PublicKey
	for k = range r.devs {
		break
	}
	b.ResetTimer()
	for range b.N {
		if err := r.admit(k); err != nil {
			b.Fatal(err)
		}
	}
}
