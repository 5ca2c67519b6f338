package backendtest

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile"
)

// Profiles returns every batch of profiles the Collector has written so far.
func (c *Collector) Profiles() ([]pprofile.Profiles, error) {
	var u pprofile.JSONUnmarshaler
	return readJSONLines(c.ProfilesFile, u.UnmarshalProfiles)
}

// WaitProfiles polls the file output until done accepts it, returning the
// batches; the test fails if that does not happen within timeout.
func (c *Collector) WaitProfiles(tb testing.TB, timeout time.Duration, done func([]pprofile.Profiles) bool) []pprofile.Profiles {
	tb.Helper()
	return waitFor(tb, timeout, c.ProfilesFile, c.Profiles, done)
}
