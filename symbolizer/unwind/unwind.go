// Package unwind turns an ELF file's call-frame information (.eh_frame and
// .debug_frame) into a compact, sorted table of per-address unwind rules
// that the BPF stack walker can execute on x86-64.
//
// Only what BPF can evaluate is kept: the CFA as RSP or RBP plus an offset,
// the glibc lazy-PLT expression, signal frames, and RBP saved at a fixed
// offset from the CFA. Everything else becomes CFAInvalid and is counted by
// reason, so the cost of the simplification is visible rather than silent.
//
// The input comes from other people's machines: every length and offset is
// bounds-checked, nothing is allocated by a count read from the file, and a
// broken record costs only that record.
package unwind

import (
	"errors"
	"sort"
)

// CFAKind says how to compute the canonical frame address.
type CFAKind uint8

const (
	CFANone    CFAKind = iota // no FDE covers this address (a gap); BPF falls back to frame pointers
	CFARSP                    // CFA = RSP + CFAOffset
	CFARBP                    // CFA = RBP + CFAOffset
	CFAPLT                    // PLT stub: CFA = RSP + 8 + (((RIP & 15) >= CFAOffset) ? 8 : 0); CFAOffset is 10 or 11
	CFASignal                 // signal trampoline (__restore_rt): registers come from the rt_sigframe at RSP
	CFAStop                   // outermost frame: return address undefined; the walk ends here
	CFAInvalid                // an FDE covers it but the rule can't be expressed here (see Table.Unsupported)
)

// RBPKind says how to recover the caller's RBP.
type RBPKind uint8

const (
	RBPSame      RBPKind = iota // RBP unchanged in this frame
	RBPAtCFA                    // RBP saved at CFA + RBPOffset (negative, e.g. -16)
	RBPUndefined                // unknown after this frame
)

// Rule is the unwind rule for a range of addresses.
type Rule struct {
	CFA       CFAKind
	RBP       RBPKind
	CFAOffset int32
	RBPOffset int32
}

// Row is where a Rule starts to apply; it applies until the next Row's PC.
type Row struct {
	PC   uint64 // ELF virtual address, as in the file
	Rule Rule
}

// Table is a file's unwind rules, sorted by address.
type Table struct {
	// Rows is sorted by PC, strictly increasing; consecutive rows never have
	// equal rules; gaps between FDEs are CFANone rows; the last row is
	// CFANone at the end of the last FDE.
	Rows []Row
	// Unsupported counts, by reason, rows that became CFAInvalid (or lost
	// their RBP rule), and records that were skipped ("malformed_fde").
	Unsupported map[string]int
	// Sources names the sections used: "eh_frame", "debug_frame",
	// "debug_frame (debug file)".
	Sources []string
	// FDEs is how many FDEs were read.
	FDEs int

	sourceBytes int
}

// ErrNoCFI is returned when a file has no usable call frame information.
var ErrNoCFI = errors.New("no call frame information")

// Lookup returns the rule for pc, or a CFANone rule outside the table.
func (t *Table) Lookup(pc uint64) Rule {
	i := sort.Search(len(t.Rows), func(i int) bool { return t.Rows[i].PC > pc })
	if i == 0 {
		return Rule{}
	}
	return t.Rows[i-1].Rule
}

// SourceBytes is the total size of the CFI sections that were read.
func (t *Table) SourceBytes() int { return t.sourceBytes }
