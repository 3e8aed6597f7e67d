package bench

import (
	"encoding/json"
	"testing"
	"time"
)

// TestRetentionJSON checks that the report states retention in seconds
// and reads back what it wrote.
func TestRetentionJSON(t *testing.T) {
	r := Retention{Retain: 5 * time.Minute, MaxDisk: 50e9, EpochRecords: 1000, EpochAge: 1500 * time.Millisecond}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"retain_s":300,"max_disk_bytes":50000000000,"epoch_records":1000,"epoch_age_s":1.5}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	var back Retention
	if err := json.Unmarshal(b, &back); err != nil || back != r {
		t.Errorf("read back %+v (%v), want %+v", back, err, r)
	}
	if b, _ := json.Marshal(Retention{Retain: time.Minute}); string(b) != `{"retain_s":60}` {
		t.Errorf("zero fields written: %s", b)
	}
}

func TestRetentionString(t *testing.T) {
	for r, want := range map[Retention]string{
		{}:                    "the node's defaults: keep everything",
		{Retain: time.Minute}: "retain 1m0s",
		{MaxDisk: 2e9, EpochAge: 10 * time.Second}: "max disk 2000.0 MB, epoch age 10s",
		{EpochRecords: 65536}:                      "epochs of 65,536 records",
	} {
		if got := r.String(); got != want {
			t.Errorf("%+v: %q, want %q", r, got, want)
		}
	}
}

// TestRetentionStoreConfig checks what an in-process node's store is
// given.
func TestRetentionStoreConfig(t *testing.T) {
	r := Retention{Retain: time.Hour, MaxDisk: 7, EpochRecords: 9, EpochAge: time.Minute}
	sc := r.storeConfig()
	if sc.Retain != time.Hour || sc.MaxDisk != 7 || sc.EpochRecords != 9 || sc.EpochAge != time.Minute {
		t.Errorf("store config %+v from %+v", sc, r)
	}
	if sc := (Retention{}).storeConfig(); sc.Retain != 0 || sc.MaxDisk != 0 || sc.EpochRecords != 0 || sc.EpochAge != 0 {
		t.Errorf("the zero retention sets %+v", sc)
	}
}
