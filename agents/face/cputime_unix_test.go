//go:build unix

package face

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used (user + system), so the
// benchmarks can report cost per operation that does not depend on how
// busy the machine is.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
