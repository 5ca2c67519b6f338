package unwind

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
)

// maxSectionSize caps what we read from one CFI section. The largest
// .eh_frame we know of (libLLVM) is 6 MiB; the cap only stops a lying
// header (or a compression bomb) from costing gigabytes.
const maxSectionSize = 256 << 20

// Source names, as reported in Table.Sources.
const (
	sourceEHFrame      = "eh_frame"
	sourceDebugFrame   = "debug_frame"
	sourceDebugFrameDF = "debug_frame (debug file)"
)

// Build reads .eh_frame (through .eh_frame_hdr when present) and
// .debug_frame of f. Where both cover an address .eh_frame wins, as it is
// what the runtime itself unwinds with.
func Build(f *elf.File) (*Table, error) {
	return BuildWithDebug(f, nil)
}

// BuildWithDebug is Build plus the .debug_frame of a separate debug file,
// used for addresses the main file's CFI does not cover. debug may be nil.
func BuildWithDebug(f, debug *elf.File) (*Table, error) {
	b := newBuilder()
	var sources []string
	var sourceBytes int
	var errs []error
	add := func(name string, sec *section, err error) {
		if err != nil {
			errs = append(errs, err)
		}
		if sec == nil {
			return
		}
		sourceBytes += len(sec.data)
		if b.parseSection(sec) > 0 {
			sources = append(sources, name)
		}
	}
	sec, err := ehFrame(f)
	add(sourceEHFrame, sec, err)
	sec, err = debugFrame(f, 1)
	add(sourceDebugFrame, sec, err)
	if debug != nil {
		sec, err = debugFrame(debug, 2)
		add(sourceDebugFrameDF, sec, err)
	}
	if len(b.fdes) == 0 {
		return nil, fmt.Errorf("building unwind table: %w", errors.Join(append(errs, ErrNoCFI)...))
	}
	t := b.table()
	t.Sources, t.sourceBytes = sources, sourceBytes
	if len(errs) > 0 {
		// Another section was usable; one we could not read is a loss of
		// coverage to count, not a failure.
		t.Unsupported[unreadableSection] += len(errs)
	}
	return t, nil
}

func fileBases(f *elf.File) bases {
	var b bases
	if s := f.Section(".text"); s != nil {
		b.text = s.Addr
	}
	if s := f.Section(".got"); s != nil {
		b.data = s.Addr
	}
	return b
}

// debugFrame loads .debug_frame; debug/elf decompresses SHF_COMPRESSED
// sections (zlib and zstd) itself.
func debugFrame(f *elf.File, prio uint8) (*section, error) {
	s := f.Section(".debug_frame")
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil, nil
	}
	data, err := sectionData(s)
	if err != nil {
		return nil, fmt.Errorf("reading .debug_frame: %w", err)
	}
	return &section{data: data, kind: kindDebugFrame, prio: prio, bases: fileBases(f)}, nil
}

func sectionData(s *elf.Section) ([]byte, error) {
	if s.Size > maxSectionSize {
		return nil, fmt.Errorf("section %s of %d bytes exceeds %d", s.Name, s.Size, maxSectionSize)
	}
	return s.Data()
}

// ehFrame finds .eh_frame the way the runtime does, through .eh_frame_hdr
// (which survives section-header stripping as PT_GNU_EH_FRAME), falling
// back to the section when there is no header.
func ehFrame(f *elf.File) (*section, error) {
	bs := fileBases(f)
	addr, hdrErr := ehFrameHdrTarget(f, bs)
	if hdrErr == nil {
		if sec, err := ehFrameAt(f, addr, bs); sec != nil || err != nil {
			return sec, err
		}
	}
	s := f.Section(".eh_frame")
	if s == nil || s.Type == elf.SHT_NOBITS {
		if errors.Is(hdrErr, errNoHdr) {
			return nil, nil
		}
		return nil, hdrErr
	}
	data, err := sectionData(s)
	if err != nil {
		return nil, fmt.Errorf("reading .eh_frame: %w", err)
	}
	return &section{data: data, addr: s.Addr, kind: kindEHFrame, bases: bs}, nil
}

var errNoHdr = errors.New("no .eh_frame_hdr")

// ehFrameHdrTarget decodes eh_frame_ptr from .eh_frame_hdr.
func ehFrameHdrTarget(f *elf.File, bs bases) (uint64, error) {
	var ra io.ReaderAt
	var addr uint64
	if s := f.Section(".eh_frame_hdr"); s != nil && s.Type != elf.SHT_NOBITS {
		ra, addr = s, s.Addr
	} else if p := progOfType(f, elf.PT_GNU_EH_FRAME); p != nil {
		ra, addr = p, p.Vaddr
	} else {
		return 0, errNoHdr
	}
	var hdr [16]byte
	n, err := ra.ReadAt(hdr[:], 0)
	if n < 8 && err != nil {
		return 0, fmt.Errorf("reading .eh_frame_hdr: %w", err)
	}
	if hdr[0] != 1 {
		return 0, fmt.Errorf("unsupported .eh_frame_hdr version %d", hdr[0])
	}
	r := reader{buf: hdr[:n], off: 4}
	ptr, ok := readPointer(&r, hdr[1], addr, bs)
	if !ok {
		return 0, fmt.Errorf("undecodable .eh_frame_hdr pointer encoding %#x", hdr[1])
	}
	return ptr, nil
}

// ehFrameAt returns the section starting at addr, or, without section
// headers, the bytes from addr to the end of its loadable segment (parsed
// up to the zero terminator). nil, nil when nothing is there.
func ehFrameAt(f *elf.File, addr uint64, bs bases) (*section, error) {
	for _, s := range f.Sections {
		if s.Addr == addr && s.Type != elf.SHT_NOBITS && s.Size > 0 && s.Flags&elf.SHF_ALLOC != 0 {
			data, err := sectionData(s)
			if err != nil {
				return nil, fmt.Errorf("reading .eh_frame: %w", err)
			}
			return &section{data: data, addr: addr, kind: kindEHFrame, bases: bs}, nil
		}
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || addr < p.Vaddr || addr-p.Vaddr >= p.Filesz {
			continue
		}
		off := addr - p.Vaddr
		data, err := readCapped(p, off, min(p.Filesz-off, maxSectionSize))
		if err != nil {
			return nil, fmt.Errorf("reading .eh_frame from segment: %w", err)
		}
		return &section{data: data, addr: addr, kind: kindEHFrame, bases: bs, stopAtZero: true}, nil
	}
	return nil, nil
}

func progOfType(f *elf.File, typ elf.ProgType) *elf.Prog {
	for _, p := range f.Progs {
		if p.Type == typ {
			return p
		}
	}
	return nil
}

// readCapped reads n bytes at off in chunks, so a header claiming more than
// the file holds costs at most one chunk beyond the real data.
func readCapped(ra io.ReaderAt, off, n uint64) ([]byte, error) {
	const chunk = 1 << 20
	var out []byte
	for uint64(len(out)) < n {
		want := min(n-uint64(len(out)), chunk)
		buf := make([]byte, want)
		got, err := ra.ReadAt(buf, int64(off)+int64(len(out)))
		out = append(out, buf[:got]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
