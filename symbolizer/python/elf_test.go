package python

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"testing"
)

// fakeELF describes a small 64-bit little-endian ELF file: a few sections
// with contents and a .dynsym naming symbols in them.
type fakeELF struct {
	machine  elf.Machine
	sections []fakeSection // indices from 1
	syms     []fakeSym
}

type fakeSection struct {
	name string
	typ  elf.SectionType
	addr uint64
	data []byte // for SHT_NOBITS only its length counts
}

type fakeSym struct {
	name    string
	section int // 0: undefined
	value   uint64
	size    uint64
}

// fakePython returns an interpreter file of minor version minor:
// _PyRuntime (with _Py_DebugOffsets from minor's layout where the version
// has them), _PyEval_EvalFrameDefault, PyCode_Type and, from 3.11,
// Py_Version.
func fakePython(minor, patch int) *fakeELF {
	l, _ := LayoutFor(Version{Major: 3, Minor: minor})
	rodata := make([]byte, 16)
	fe := &fakeELF{
		machine: elf.EM_X86_64,
		sections: []fakeSection{
			{".text", elf.SHT_PROGBITS, 0x10000, make([]byte, 0x10)},
			{".rodata", elf.SHT_PROGBITS, 0x20000, rodata},
			{".data", elf.SHT_PROGBITS, 0x30000, debugImage(l, minor, patch)},
		},
		syms: []fakeSym{
			{"_PyEval_EvalFrameDefault", 1, 0x10004, 0x8},
			{"_PyRuntime", 3, 0x30000, 16},
			{"PyCode_Type", 3, 0x30008, 0},
		},
	}
	if minor >= 11 {
		binary.LittleEndian.PutUint64(rodata[8:], uint64(3<<24|minor<<16|patch<<8|0xf0))
		fe.syms = append(fe.syms, fakeSym{"Py_Version", 2, 0x20008, 8})
	}
	return fe
}

// debugImage is the start of a _PyRuntime: _Py_DebugOffsets as the
// interpreter of that version fills it, for versions that have it.
func debugImage(l *Layout, minor, patch int) []byte {
	d := debugOffsets[minor]
	if d == nil {
		return make([]byte, 16)
	}
	size := d.freeThreaded + 8
	for _, f := range d.fields {
		size = max(size, f.at+8)
	}
	b := make([]byte, size)
	copy(b, debugCookie)
	binary.LittleEndian.PutUint64(b[d.version:], uint64(3<<24|minor<<16|patch<<8|0xf0))
	for _, f := range d.fields {
		binary.LittleEndian.PutUint64(b[f.at:], uint64(f.get(l)))
	}
	return b
}

// bytes lays the file out: header, section contents, section headers.
func (fe *fakeELF) bytes() []byte {
	var dynstr, shstr bytes.Buffer
	dynstr.WriteByte(0)
	shstr.WriteByte(0)
	symtab := make([]byte, 24) // the null symbol
	for _, s := range fe.syms {
		e := make([]byte, 24)
		binary.LittleEndian.PutUint32(e[0:], uint32(dynstr.Len()))
		e[4] = byte(elf.STB_GLOBAL)<<4 | byte(elf.STT_OBJECT)
		binary.LittleEndian.PutUint16(e[6:], uint16(s.section))
		binary.LittleEndian.PutUint64(e[8:], s.value)
		binary.LittleEndian.PutUint64(e[16:], s.size)
		symtab = append(symtab, e...)
		dynstr.WriteString(s.name)
		dynstr.WriteByte(0)
	}
	n := len(fe.sections)
	secs := append(append([]fakeSection(nil), fe.sections...),
		fakeSection{".dynsym", elf.SHT_DYNSYM, 0, symtab},
		fakeSection{".dynstr", elf.SHT_STRTAB, 0, dynstr.Bytes()},
		fakeSection{".shstrtab", elf.SHT_STRTAB, 0, nil})
	names := make([]uint32, len(secs))
	for i, s := range secs {
		names[i] = uint32(shstr.Len())
		shstr.WriteString(s.name)
		shstr.WriteByte(0)
	}
	secs[len(secs)-1].data = shstr.Bytes()

	out := make([]byte, 64)
	offsets := make([]uint64, len(secs))
	for i, s := range secs {
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
		offsets[i] = uint64(len(out))
		if s.typ != elf.SHT_NOBITS {
			out = append(out, s.data...)
		}
	}
	for len(out)%8 != 0 {
		out = append(out, 0)
	}
	shoff := len(out)
	out = append(out, make([]byte, 64)...) // the null section
	for i, s := range secs {
		h := make([]byte, 64)
		le := binary.LittleEndian
		le.PutUint32(h[0:], names[i])
		le.PutUint32(h[4:], uint32(s.typ))
		le.PutUint64(h[16:], s.addr)
		le.PutUint64(h[24:], offsets[i])
		le.PutUint64(h[32:], uint64(len(s.data)))
		if s.typ == elf.SHT_DYNSYM {
			le.PutUint32(h[40:], uint32(n+2)) // .dynstr
			le.PutUint64(h[56:], 24)
		}
		le.PutUint64(h[48:], 1)
		out = append(out, h...)
	}
	writeHeader(out, fe.machine, shoff, len(secs)+1)
	return out
}

func writeHeader(out []byte, machine elf.Machine, shoff, shnum int) {
	copy(out, []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)})
	le := binary.LittleEndian
	le.PutUint16(out[16:], uint16(elf.ET_DYN))
	le.PutUint16(out[18:], uint16(machine))
	le.PutUint32(out[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(out[40:], uint64(shoff))
	le.PutUint16(out[52:], 64)
	le.PutUint16(out[54:], 56)
	le.PutUint16(out[58:], 64)
	le.PutUint16(out[60:], uint16(shnum))
	le.PutUint16(out[62:], uint16(shnum-1)) // .shstrtab comes last
}

// open parses the file.
func (fe *fakeELF) open(t testing.TB) *elf.File {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(fe.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return f
}
