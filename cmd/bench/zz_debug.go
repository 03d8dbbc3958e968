package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

func debugMem(label string) {
	if os.Getenv("BENCH_DEBUG") == "" {
		return
	}
	b, _ := os.ReadFile("/proc/self/status")
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Vm") || strings.HasPrefix(l, "Rss") || strings.HasPrefix(l, "Threads") {
			keep = append(keep, strings.Join(strings.Fields(l), " "))
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(os.Stderr, "DEBUG %s: %s | HeapInuse %.1fMB HeapIdle %.1fMB HeapReleased %.1fMB StackInuse %.1fMB Sys %.1fMB goroutines %d\n", label, strings.Join(keep, ", "),
		float64(m.HeapInuse)/1e6, float64(m.HeapIdle)/1e6, float64(m.HeapReleased)/1e6, float64(m.StackInuse)/1e6, float64(m.Sys)/1e6, runtime.NumGoroutine())
}
