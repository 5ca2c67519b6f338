package testenv

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

// CheckLogsThroughInstalledLogger installs a JSON logger at debug level as
// the command does at start (after package initialisation), has logger()
// log one debug and one warning line, and checks that both arrive there
// with their level and the component attribute.
func CheckLogsThroughInstalledLogger(t *testing.T, component string, logger func() *slog.Logger) {
	t.Helper()
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	logger().Debug("probe debug")
	logger().Warn("probe warning")

	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("not a JSON line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("installed handler got %d lines, want 2: %q", len(lines), buf.String())
	}
	for i, want := range []string{"DEBUG", "WARN"} {
		if lines[i]["level"] != want || lines[i]["component"] != component {
			t.Errorf("line %d = %v, want level %s and component %s", i, lines[i], want, component)
		}
	}
}
