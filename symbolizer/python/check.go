package python

// Check is the checksum the BPF program records for a code object, from the
// pointers to its name, file name and line table and its first line number.
// A code object freed and another allocated at the same address would have
// to match all four to be mistaken for it. It is FNV-1a over whole words
// (cheap in BPF: no loop over bytes), folded to 32 bits; the BPF side
// computes exactly this.
func Check(name, filename, linetable uint64, firstlineno uint32) uint32 {
	h := uint64(0xcbf29ce484222325)
	for _, v := range [...]uint64{name, filename, linetable, uint64(firstlineno)} {
		h = (h ^ v) * 0x100000001b3
	}
	return uint32(h ^ (h >> 32))
}
