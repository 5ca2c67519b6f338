package unwind

// parseFrames builds a table from raw section bytes: the entry point for
// the fuzzer and for tests on hand-built CFI. addr is the section's virtual
// address (for pc-relative pointers in .eh_frame).
func parseFrames(data []byte, addr uint64, kind sectionKind) *Table {
	b := newBuilder()
	b.parseSection(&section{data: data, addr: addr, kind: kind})
	t := b.table()
	t.sourceBytes = len(data)
	return t
}
