package main

import (
	"errors"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts the profiles asked for; the returned func writes
// them. The allocation profile samples every 4 KiB allocated (the default
// is 512 KiB), which adds some cost to every phase: compare numbers only
// between runs without it.
func startProfiles(o *options) (stop func() error, err error) {
	var cpu *os.File
	if o.cpuProf != "" {
		if cpu, err = os.Create(o.cpuProf); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, err
		}
	}
	if o.memProf != "" {
		runtime.MemProfileRate = 4 << 10
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if o.memProf != "" {
			f, err := os.Create(o.memProf)
			if err != nil {
				return errors.Join(append(errs, err)...)
			}
			errs = append(errs, pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
		}
		return errors.Join(errs...)
	}, nil
}
