package symbolizer

import (
	"bytes"
	"os"
	"testing"
)

// BenchmarkParseKallsyms parses this machine's /proc/kallsyms from memory:
// the parser's own cost, without the kernel's formatting of the file.
func BenchmarkParseKallsyms(b *testing.B) {
	raw, err := os.ReadFile("/proc/kallsyms")
	if err != nil || len(raw) == 0 {
		b.Skipf("skipped: /proc/kallsyms: %v", err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseKallsyms(bytes.NewReader(raw)); err != nil {
			b.Skipf("skipped: %v", err)
		}
	}
}
