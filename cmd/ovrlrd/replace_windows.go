package main

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// errorSharingViolation is ERROR_SHARING_VIOLATION, which syscall does not
// name.
const errorSharingViolation syscall.Errno = 32

// replaceFile renames from over to. On Windows a rename over a file that
// another process holds open (a second ovrlrd reading it, an antivirus
// scan) fails with access denied until that handle closes: it is tried
// again a few times, for a quarter of a second in all.
func replaceFile(from, to string) error {
	return retry(func() error { return os.Rename(from, to) }, func(err error) bool {
		return errors.Is(err, syscall.ERROR_ACCESS_DENIED) || errors.Is(err, errorSharingViolation)
	}, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 100 * time.Millisecond})
}
