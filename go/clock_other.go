//go:build !linux

// Outside Linux the lease clock is Go's monotonic clock. Called from any goroutine.
package shardz

import "time"

func bootNow() time.Time { return time.Now() }
