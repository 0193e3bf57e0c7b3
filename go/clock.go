// The worker's default clock for the lease, stamps and the watchdog: CLOCK_BOOTTIME on Linux
// (clock_linux.go), which keeps counting while the machine is suspended, so a suspended
// worker's lease runs out on its own clock as the coordinator sees it; time.Now elsewhere.
// Called from any goroutine.
package shardz

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// newIncarnation names this process (PROTOCOL.md 4.1): 16 random bytes in hex (the time when
// the system's generator fails).
func newIncarnation() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return fmt.Sprintf("%032x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b)
}
