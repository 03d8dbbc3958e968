//go:build unix

package main

import "syscall"

// openFlags open a transcript without blocking: a FIFO swapped in between
// its Lstat and its open would otherwise wait for a writer forever. A
// regular file ignores the flag.
const openFlags = syscall.O_NONBLOCK
