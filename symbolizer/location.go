package symbolizer

import (
	"path/filepath"
	"strconv"
	"strings"
)

// Frame is one function activation at an address. Inlined calls make several
// frames share one address.
type Frame struct {
	Function string // demangled function name; "" when not known
	File     string // source file when known (DWARF or pclntab)
	Line     int    // 0 when unknown
}

// Mapping is one mapped region of a process (or a kernel image or module).
type Mapping struct {
	Start, Limit, Offset uint64 // from /proc/<pid>/maps (Offset = file offset of Start)
	Path                 string // as shown in maps; "[kernel.kallsyms]" for the kernel, "[vdso]" etc.
	BuildID              string // hex GNU build ID when known
	Kernel               bool
	Perms                string // "r-xp" as in maps; empty for kernel mappings
	Dev                  string // "major:minor" as in maps
	Inode                uint64
}

// Executable reports whether the mapping may hold code.
func (m *Mapping) Executable() bool {
	return m.Kernel || (len(m.Perms) >= 3 && m.Perms[2] == 'x')
}

// FileOffset converts an address inside the mapping to an offset in the mapped file.
func (m *Mapping) FileOffset(addr uint64) uint64 {
	return addr - m.Start + m.Offset
}

// Location is what is known about one sampled address.
type Location struct {
	Address uint64   // the address asked about (absolute, as sampled)
	Mapping *Mapping // nil only when the address is in no mapping at all
	Frames  []Frame  // innermost (inlined leaf) first, outermost last; empty when unnamed
}

// ModuleOffset names the address by its module and offset, "libfoo.so+0x1234".
// The offset is the file offset for user mappings and the offset from the
// module's first symbol for kernel mappings.
func (l Location) ModuleOffset() string {
	if l.Mapping == nil {
		return "0x" + strconv.FormatUint(l.Address, 16)
	}
	name := filepath.Base(strings.TrimSuffix(l.Mapping.Path, " (deleted)"))
	if l.Mapping.Path == "" {
		name = "[anon]"
	}
	return name + "+0x" + strconv.FormatUint(l.Mapping.FileOffset(l.Address), 16)
}

// String returns the innermost function name, or module+offset when the
// address has no name, so no frame is ever a bare "[unknown]".
func (l Location) String() string {
	if len(l.Frames) > 0 && l.Frames[0].Function != "" {
		return l.Frames[0].Function
	}
	return l.ModuleOffset()
}

// Named reports whether at least one frame carries a function name.
func (l Location) Named() bool {
	return len(l.Frames) > 0 && l.Frames[0].Function != ""
}
