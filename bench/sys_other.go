//go:build !linux

package bench

import (
	"os"
	"time"
)

// The measurements of the process's own CPU and memory are Linux only;
// elsewhere they are reported as unavailable.

func threadCPU() (time.Duration, bool)  { return 0, false }
func threadID() int                     { return 0 }
func processCPU() (time.Duration, bool) { return 0, false }

func processMemory() (memory, bool) { return memory{}, false }
func pidMemory(int) (memory, bool)  { return memory{}, false }
func cpuModel() string              { return "" }

func allocated(fi os.FileInfo) int64 { return fi.Size() }

func loadAvg() float64 { return 0 }
