package bench

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

// clockThreadCPUTime is CLOCK_THREAD_CPUTIME_ID.
const clockThreadCPUTime = 3

// threadCPU returns the CPU time of the calling OS thread and true, or false
// where that cannot be read. The caller must keep its goroutine on one
// thread between two readings (runtime.LockOSThread, or no blocking call
// in between) for their difference to mean anything.
func threadCPU() (time.Duration, bool) {
	var ts syscall.Timespec
	_, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	if e != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// threadID returns the calling OS thread's id.
func threadID() int { return syscall.Gettid() }

// processCPU returns the CPU time (user and system) of this process so far.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// processMemory returns this process's memory now.
func processMemory() (memory, bool) { return procMemory("/proc/self/status") }

// pidMemory returns the memory of process pid now.
func pidMemory(pid int) (memory, bool) { return procMemory("/proc/" + strconv.Itoa(pid) + "/status") }

func procMemory(path string) (memory, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return memory{}, false
	}
	return parseStatus(b)
}

// cpuModel returns the processor's model name, or "".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.TrimSpace(k)) == "model name" {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

// allocated returns the bytes a file takes on disk (its blocks), which for
// a sparse or preallocated file differs from its size.
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}

// loadAvg returns the 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(string(f[0]), 64)
	return v
}
