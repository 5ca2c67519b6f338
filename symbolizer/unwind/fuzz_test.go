package unwind

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes as .eh_frame or .debug_frame contents.
// Seeds in testdata/fuzz/FuzzParse are slices of libc's .eh_frame (the
// first FDEs, the signal-frame CIE, a "zPLR" CIE), a gcc .debug_frame and
// hand-made broken records.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, addr uint64, debug bool) {
		kind := kindEHFrame
		if debug {
			kind = kindDebugFrame
		}
		tab := parseFrames(data, addr, kind)
		checkInvariants(t, tab)
		// Every row needs at least one byte of input: a table larger than
		// that means an allocation driven by something other than the data.
		if len(tab.Rows) > len(data)+1 {
			t.Fatalf("%d rows from %d bytes", len(tab.Rows), len(data))
		}
		for _, r := range tab.Rows {
			if got := tab.Lookup(r.PC); got != r.Rule {
				t.Fatalf("Lookup(%#x) = %+v, row says %+v", r.PC, got, r.Rule)
			}
		}
	})
}

// TestSeedsParse keeps the real-data seeds meaningful: they must still
// decode to rows, or the fuzzer starts from nothing.
func TestSeedsParse(t *testing.T) {
	for name, want := range map[string]CFAKind{
		"libc_head":       CFAPLT,
		"libc_signal":     CFASignal,
		"libc_zplr":       CFARSP,
		"gcc_debug_frame": CFARSP,
	} {
		data, addr, debug := readSeed(t, name)
		kind := kindEHFrame
		if debug {
			kind = kindDebugFrame
		}
		tab := parseFrames(data, addr, kind)
		found := false
		for _, r := range tab.Rows {
			found = found || r.Rule.CFA == want
		}
		// libc_zplr is cut from the middle of the section, so FDEs of the
		// CIE before it are expected to be malformed.
		if !found || (name != "libc_zplr" && tab.Unsupported[malformedFDE] != 0) {
			t.Errorf("seed %s: no %v row in %d rows (unsupported %v)", name, want, len(tab.Rows), tab.Unsupported)
		}
	}
}

// readSeed decodes a corpus file written as
// "go test fuzz v1", []byte("..."), uint64(N), bool(B).
func readSeed(t *testing.T, name string) ([]byte, uint64, bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzParse", name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 4 {
		t.Fatalf("seed %s: %d lines", name, len(lines))
	}
	data, err1 := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	addr, err2 := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(lines[2], "uint64("), ")"), 10, 64)
	debug, err3 := strconv.ParseBool(strings.TrimSuffix(strings.TrimPrefix(lines[3], "bool("), ")"))
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("seed %s: %v", name, err)
	}
	return []byte(data), addr, debug
}
