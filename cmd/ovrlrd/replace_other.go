//go:build !windows

package main

import "os"

// replaceFile renames from over to, which readers holding it open do not
// hinder here.
func replaceFile(from, to string) error { return os.Rename(from, to) }
