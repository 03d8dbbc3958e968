//go:build !unix

package main

// openFlags: no FIFO blocks an open here.
const openFlags = 0
