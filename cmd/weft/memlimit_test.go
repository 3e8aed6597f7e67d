package main

import (
	"os"
	"strings"
	"testing"
)

// TestMemoryLimitReachesRuntime starts nodes with memory-limit from the
// flag, from the environment, and without it, and reads the limit the Go
// runtime holds from the node's own metrics (go_gc_gomemlimit_bytes).
func TestMemoryLimitReachesRuntime(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want float64
	}{
		{"flag", nil, []string{"--memory-limit", "300MiB"}, 300 << 20},
		{"env", []string{"WEFT_MEMORY_LIMIT=1GiB"}, nil, 1 << 30},
		{"none", nil, nil, float64(1<<63 - 1)}, // the runtime's default: no limit
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WEFT_MEMORY_LIMIT", "") // restored after the test
			os.Unsetenv("WEFT_MEMORY_LIMIT")
			for _, kv := range tc.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			p := startNode(t, t.TempDir(), tc.args...)
			if got := metric(t, p.url, "go_gc_gomemlimit_bytes"); got != tc.want {
				t.Fatalf("go_gc_gomemlimit_bytes = %v, want %v", got, tc.want)
			}
		})
	}
}
