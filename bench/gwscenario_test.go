package bench_test

import (
	"testing"
	"time"

	"github.com/weftnet/weft/bench"
)

// TestSmokeGateway runs the gateway scenario: messages built live on fresh
// tips, measured from their first submission, and the fleet's counts in
// the report.
func TestSmokeGateway(t *testing.T) {
	res := smoke(t, bench.Config{Scenario: bench.Gateway, Devices: 60, Batch: 32, Clients: 3, Messages: 2000, Duration: 20 * time.Second})
	if res.StopReason != "messages" || res.Offered != 2000 {
		t.Errorf("stopped by %s after %d messages, want after the 2000 messages", res.StopReason, res.Offered)
	}
	f := res.Fleet
	if f == nil || f.Acked < res.Accepted || f.Built < f.Acked || f.Requests == 0 || len(f.Failed) > 0 {
		t.Errorf("fleet: %+v, accepted %d", f, res.Accepted)
	}
	if res.Setup.Clients != 3 || res.Setup.Batch != 32 {
		t.Errorf("setup: %d gateways, batches of %d; want 3 and 32", res.Setup.Clients, res.Setup.Batch)
	}
}
