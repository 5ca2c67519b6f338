// Package tracefs finds (and if needed mounts) the kernel's tracing file
// system and reads the record layout of classic tracepoints from it.
//
// Classic tracepoint records change layout between kernels (block_rq_issue
// gained an ioprio field and a longer rwbs string, tcp_probe gained family,
// mark and socket addresses), so programs that read them take their field
// offsets from the kernel's own format file instead of hard-coding them.
package tracefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Root is where tracefs is expected, and mounted when it is not.
const Root = "/sys/kernel/tracing"

// legacyRoot is where kernels before 4.1 (and some distributions) expose the
// same files under debugfs.
const legacyRoot = "/sys/kernel/debug/tracing"

// ensure runs once per process: the BPF library caches the tracefs location
// the first time a tracepoint is attached, so the mount must happen before.
var ensure = sync.OnceValues(mount)

// Ensure returns the tracefs directory, mounting tracefs at Root when
// neither Root nor the legacy debugfs location is populated. Call it before
// attaching any classic tracepoint.
func Ensure() (string, error) { return ensure() }

func mount() (string, error) {
	for _, dir := range []string{Root, legacyRoot} {
		if populated(dir) {
			return dir, nil
		}
	}
	if err := unix.Mount("nodev", Root, "tracefs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return "", fmt.Errorf("mounting tracefs at %s (needs root and a kernel with CONFIG_TRACING): %w", Root, err)
	}
	if !populated(Root) {
		return "", fmt.Errorf("tracefs at %s has no events directory", Root)
	}
	return Root, nil
}

func populated(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "events"))
	return err == nil && st.IsDir()
}

// ReadFormat parses the format file of tracepoint group:name.
func ReadFormat(group, name string) (*Format, error) {
	dir, err := Ensure()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "events", group, name, "format")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tracepoint %s:%s: %w", group, name, err)
	}
	defer f.Close()
	fm, err := ParseFormat(f)
	if err != nil {
		return nil, fmt.Errorf("tracepoint %s:%s: %w", group, name, err)
	}
	return fm, nil
}
