package bench

import (
	"encoding/json"
	"testing"
)

// TestReading checks that readings are JSON objects of the documented
// fields, padded to the size asked, the same for the same index.
func TestReading(t *testing.T) {
	for _, i := range []uint64{0, 1, 999, 1 << 40, ^uint64(0)} {
		for _, size := range []int{0, MinJSONPayload, 100, 1000} {
			b := Reading(i, size)
			if len(b) < size || (len(b) > size && size >= MinJSONPayload) {
				t.Fatalf("reading %d, size %d: %d bytes", i, size, len(b))
			}
			var r struct {
				I     uint64  `json:"i"`
				TempC float64 `json:"temp_c"`
				RH    float64 `json:"rh"`
			}
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("reading %d: %q: %v", i, b, err)
			}
			if r.I != i || r.RH < 30 || r.RH >= 100 || r.TempC < -35 || r.TempC >= 50 {
				t.Fatalf("reading %d: %q", i, b)
			}
			if string(Reading(i, size)) != string(b) {
				t.Fatalf("reading %d differs from one call to the next", i)
			}
		}
	}
	if n := len(Reading(^uint64(0), 0)); n > MinJSONPayload {
		t.Fatalf("the longest reading is %d bytes, more than MinJSONPayload", n)
	}
}
