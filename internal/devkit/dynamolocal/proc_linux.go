package dynamolocal

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal makes the kernel kill the JVM if we die first, so a
// crashed test run never leaves DynamoDB Local holding a port.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
