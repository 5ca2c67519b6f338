package symbolizer

import "testing"

// BenchmarkLibcSymbols is the symbol table part of a first look at libc:
// reading libc's tables and its debug file's, and sorting them into one
// table, with both files' headers already parsed.
func BenchmarkLibcSymbols(b *testing.B) {
	fx := newLibcFixture(b)
	img := openImage(b, fx.path)
	dbg, df := openDebugFile(buildIDPath("/usr/lib/debug", img.buildID), img.buildID, 0, false)
	if dbg == nil {
		b.Skip("skipped: no debug file for libc")
	}
	defer df.Close()
	b.ReportAllocs()
	for b.Loop() {
		syms, _ := img.elfSymbols(goRange{})
		more, _ := dbg.elfSymbols(goRange{})
		t := newSymtab(append(syms, more...))
		if t.nameAt(fx.vaddrs[0]).name == "" {
			b.Fatal("no name")
		}
	}
}
