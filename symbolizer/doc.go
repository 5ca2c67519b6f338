// Package symbolizer turns sampled instruction addresses into function
// names, source files and lines.
//
// Kernel addresses are named from /proc/kallsyms (the core kernel under
// "[kernel.kallsyms]", modules under "[name]"), or by Options.KernelNamer
// when one is set, which names only the addresses asked about (vigil's,
// bpf/ksyms, asks the kernel in BPF); kallsyms is then read only for what
// it leaves unnamed. User addresses go through
// /proc/<pid>/maps to the mapped file, opened through
// /proc/<pid>/map_files (deleted files) or /proc/<pid>/root (containers),
// then Go's pclntab (Go binaries, stripped or not), DWARF (file:line and
// inlined calls), the ELF symbol tables, separate debug files (by build ID or
// .gnu_debuglink) and JIT perf maps. An address that can't be named keeps
// its mapping, so it prints as "module+0xoffset", never as "[unknown]".
//
// A process that lives only briefly is still named when Prepare is called
// as soon as it is seen: Prepare opens every mapped file at once and keeps
// the handles until Forget.
//
//	s := symbolizer.New(symbolizer.Options{})
//	defer s.Close()
//	s.Prepare(pid)                  // when the process is first seen or execs
//	locs := s.User(pid, addrs)      // later, e.g. when draining samples
//	klocs := s.Kernel(kaddrs)
//	s.Forget(pid)                   // once the process is gone
//
// Memory is bounded by bytes (Options.MaxBytes, 64 MiB by default) as well
// as by file count: everything a parsed file holds is estimated from its
// slices and charged, and over the budget the least recently used files
// are dropped, to be parsed again from their open handle when next needed.
// Go binaries are read in place from .gopclntab (a binary search and one
// function's tables per lookup), with inlined calls expanded from the
// pclntab's inline trees (Go 1.20+, non-PIE or unstripped), so stripped Go
// binaries get inlined frames without DWARF. A Go binary whose pclntab
// reads is named from it alone: its DWARF adds only cgo's C code (named
// from the symbol tables instead) and, without .debug_aranges, would be
// read whole. DWARF is loaded only when it fits half the budget; a C
// library with larger DWARF is named from its symbol tables.
//
// Files come from other people's machines, so every size and count read
// from them is bounded, and parser panics on malformed input become errors.
// The package depends on the standard library and a demangler only.
package symbolizer
