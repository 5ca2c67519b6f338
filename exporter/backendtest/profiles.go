package backendtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile"
)

// Profiles returns every batch of profiles the Collector has written so far.
func (c *Collector) Profiles() ([]pprofile.Profiles, error) {
	b, err := os.ReadFile(c.ProfilesFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The Collector may be mid-line: only complete lines are batches.
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []pprofile.Profiles
	var u pprofile.JSONUnmarshaler
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		pd, err := u.UnmarshalProfiles(line)
		if err != nil {
			return out, fmt.Errorf("parsing %s: %w", c.ProfilesFile, err)
		}
		out = append(out, pd)
	}
	return out, sc.Err()
}

// WaitProfiles polls the file output until done accepts it, returning the
// batches; the test fails if that does not happen within timeout.
func (c *Collector) WaitProfiles(tb testing.TB, timeout time.Duration, done func([]pprofile.Profiles) bool) []pprofile.Profiles {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		pds, err := c.Profiles()
		if err != nil {
			tb.Fatal(err)
		}
		if done(pds) {
			return pds
		}
		if time.Now().After(deadline) {
			tb.Fatalf("collector profiles output not as expected after %v (%d batches in %s)", timeout, len(pds), c.ProfilesFile)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
