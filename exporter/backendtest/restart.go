package backendtest

import (
	"fmt"
	"testing"
)

// Kill stops the Collector abruptly (SIGKILL), as a crash would, for fault
// tests; Restart brings it back on the same ports with the same output files.
func (c *Collector) Kill() error {
	if c.proc == nil {
		return fmt.Errorf("collector not running")
	}
	if err := c.proc.cmd.Process.Kill(); err != nil {
		return err
	}
	<-c.proc.done
	return nil
}

// Restart starts the Collector again after Kill and waits until it is healthy.
func (c *Collector) Restart(tb testing.TB) {
	tb.Helper()
	p, err := c.launch(tb)
	if err != nil {
		tb.Fatalf("restarting the Collector: %v", err)
	}
	p.cleanup(tb)
}
