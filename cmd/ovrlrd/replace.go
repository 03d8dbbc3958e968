package main

import "time"

// retry runs fn until it succeeds, fails with an error retryable does not
// take, or has waited each of waits in turn.
func retry(fn func() error, retryable func(error) bool, waits []time.Duration) error {
	err := fn()
	for _, w := range waits {
		if err == nil || !retryable(err) {
			return err
		}
		time.Sleep(w)
		err = fn()
	}
	return err
}
