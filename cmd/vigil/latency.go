package main

import (
	"errors"
	"io"
)

// runLatency is being written; see the issue tracker.
func runLatency(_ []string, _, _ io.Writer) error { return errors.New("latency: not built yet") }
