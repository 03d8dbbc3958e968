//go:build !linux

package kmslocal

import "os/exec"

func setParentDeathSignal(*exec.Cmd) {}
