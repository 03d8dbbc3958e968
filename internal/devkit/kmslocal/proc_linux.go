package kmslocal

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill local-kms if we die first, so a
// crashed test run never leaves it behind.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
