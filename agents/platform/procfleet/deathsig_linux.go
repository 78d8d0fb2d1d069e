package procfleet

import (
	"os/exec"
	"syscall"
)

// setDeathSignal asks Linux to SIGTERM the child if the scaler dies without
// closing the fleet, so workers do not outlive it.
func setDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
