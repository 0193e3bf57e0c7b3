//go:build linux

// CLOCK_BOOTTIME through the clock_gettime system call (the standard library has no wrapper,
// and golang.org/x/sys is not a dependency). Called from any goroutine.
package shardz

import (
	"syscall"
	"time"
	"unsafe"
)

const clockBoottime = 7 // linux/time.h

// bootNow is CLOCK_BOOTTIME as a time.Time (no monotonic reading of Go's own: Sub works on
// these values alone); time.Now when the call fails.
func bootNow() time.Time {
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockBoottime,
		uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return time.Now()
	}
	return time.Unix(ts.Sec, ts.Nsec)
}
