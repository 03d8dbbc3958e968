//go:build !linux && !darwin

package claude

import (
	"errors"
	"os"
	"syscall"
)

// The runner needs a process table it can read (Linux's /proc, macOS's
// sysctl); elsewhere Start fails.

var errUnsupported = errors.New("claude: running the CLI needs Linux or macOS")

// BecomeSubreaper fails outside Linux and macOS, where the CLI cannot run.
func BecomeSubreaper() error { return errUnsupported }

type procInfo struct {
	pid, ppid, pgrp, sid int
	state                byte
	start                uint64
}

func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}
func waitExited(int) error                        { return errUnsupported }
func pendingBytes(*os.File) int                   { return 0 }
func readStat(int, *[]byte) (procInfo, bool)      { return procInfo{}, false }
func scanRun([]byte, int) []procInfo              { return nil }
func rememberProcs([]procInfo)                    {}
func registerCLI(int, bool)                       {}
func reapOrphans() int                            { return 0 }
func signalProcs(int, []procInfo, syscall.Signal) {}
func alive([]procInfo) []procInfo                 { return nil }

func platformCheck() error { return errUnsupported }
