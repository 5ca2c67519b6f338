package symbolizer

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"testing"
)

// synthPclntab builds a small Go 1.20 pclntab by hand: two functions in
// a.go, the first with main.c inlined at its start, and the inline tree
// appended after the table. text is 0x1000.
func synthPclntab() []byte {
	le := binary.LittleEndian
	names := []byte("main.a\x00main.b\x00main.c\x00")
	cutab := le.AppendUint32(le.AppendUint32(nil, 0), 5)
	files := []byte("a.go\x00b.go\x00")
	// pc-value tables: line 10 then 11 (16 bytes each), file 0 over 32
	// bytes, inline index 0 then -1.
	pctab := []byte{0, 22, 16, 2, 16, 0, 2, 32, 0, 2, 16, 1, 16, 0}
	const lineTab, fileTab, inlTab = 1, 6, 9
	const hdr = 8 + 8*8
	off := []int{hdr}
	for _, n := range []int{len(names), len(cutab), len(files), len(pctab)} {
		off = append(off, off[len(off)-1]+n)
	}
	ftab := 2*8 + 4
	fn := func(entry uint32, nameOff uint32, tree uint32) []byte {
		b := le.AppendUint32(nil, entry)
		for _, v := range []uint32{nameOff, 0, 0, 0, fileTab, lineTab, 3, 0, 10} {
			b = le.AppendUint32(b, v)
		}
		b = append(b, 0, 0, 0, 4) // funcID, flag, pad, nfuncdata
		for _, v := range []uint32{0, 0, inlTab, 0, 0, 0, tree} {
			b = le.AppendUint32(b, v)
		}
		return b
	}
	f0, f1 := fn(0, 0, 0), fn(32, 7, ^uint32(0))
	pcln := le.AppendUint32(le.AppendUint32(nil, 0), uint32(ftab))
	pcln = le.AppendUint32(le.AppendUint32(pcln, 32), uint32(ftab+len(f0)))
	pcln = le.AppendUint32(pcln, 64)
	pcln = append(append(pcln, f0...), f1...)
	var b []byte
	b = le.AppendUint32(b, pclnGo120)
	b = append(b, 0, 0, 1, 8)
	for _, v := range []uint64{2, 2, 0, uint64(off[0]), uint64(off[1]), uint64(off[2]), uint64(off[3]), uint64(off[4])} {
		b = le.AppendUint64(b, v)
	}
	for _, part := range [][]byte{names, cutab, files, pctab, pcln} {
		b = append(b, part...)
	}
	le.PutUint32(b[off[4]+ftab+len(f0)-4:], 0) // main.a's tree starts at gofunc+0
	b = append(b, 0, 0, 0, 0)
	b = le.AppendUint32(b, 14) // main.c
	b = le.AppendUint32(b, 20) // call site at entry+20
	b = le.AppendUint32(b, 3)
	return b
}

// fuzzTable opens data as a pclntab whose inline trees are read from data
// itself, past the table's end (gofunc is the offset of the last 16 bytes).
func fuzzTable(data []byte) *pclntab {
	ra := newPagedReader(bytes.NewReader(data))
	t, err := newPclntab(ra, 0, uint64(len(data)), 0x1000)
	if err != nil {
		return nil
	}
	gofunc := uint64(max(len(data)-inlinedCallSize, 0))
	t.inl = &inlineTrees{ra: ra, gofunc: gofunc,
		loads: []elf.ProgHeader{{Vaddr: 0, Off: 0, Filesz: uint64(len(data))}}}
	return t
}

func TestSynthPclntab(t *testing.T) {
	tab := fuzzTable(synthPclntab())
	if tab == nil {
		t.Fatal("synthetic table rejected")
	}
	got := tab.frames(0x1004)
	if len(got) != 2 {
		t.Fatalf("frames %+v, want main.c inlined in main.a", got)
	}
	wantFrame(t, "inlined", got[0], "main.c", "a.go", 10)
	wantFrame(t, "caller", got[1], "main.a", "a.go", 11)
	wantFrame(t, "second", tab.frames(0x1021)[0], "main.b", "a.go", 10)
	if f := tab.frames(0x1040); f != nil {
		t.Errorf("past the last function: %+v", f)
	}
}

// FuzzGoPclntab decodes arbitrary bytes as a Go pclntab and looks up pcs
// around every function it claims: malformed tables must give errors or
// no names, never a panic, and answers stay bounded.
func FuzzGoPclntab(f *testing.F) {
	f.Add(synthPclntab())
	f.Fuzz(func(t *testing.T, data []byte) {
		tab := fuzzTable(data)
		if tab == nil {
			return
		}
		pcs := []uint64{0, 0x1000, 0x1004, 0x1021, ^uint64(0)}
		for i := 0; i <= min(tab.nfunc, 16); i++ {
			pcs = append(pcs, tab.entry(i), tab.entry(i)+1, tab.entry(i)-1)
		}
		for _, pc := range pcs {
			fr := tab.frames(pc)
			if len(fr) > maxInlineDepth+1 {
				t.Fatalf("%d frames at %#x", len(fr), pc)
			}
			for _, x := range fr {
				if len(x.Function) > maxGoNameLen || len(x.File) > maxGoNameLen {
					t.Fatalf("unbounded name at %#x", pc)
				}
			}
		}
	})
}
