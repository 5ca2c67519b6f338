package tcplat

import (
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

// The program's log lines must go through the logger the command installs
// at start, after package initialisation: its level and format.
func TestLogsThroughTheInstalledLogger(t *testing.T) {
	testenv.CheckLogsThroughInstalledLogger(t, "tcplat", logger)
}
