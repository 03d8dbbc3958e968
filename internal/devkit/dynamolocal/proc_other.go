//go:build !linux

package dynamolocal

import "os/exec"

func setParentDeathSignal(*exec.Cmd) {}
