package unwind

import (
	"encoding/binary"
	"testing"
)

func TestGapsOverlapsAndMerging(t *testing.T) {
	w := newEH()
	c := w.cie("zR", standardInit)
	push := []byte{cfaAdvanceLoc | 1, cfaDefCFAOff, 16}
	w.fde(c, 0x3000, 0x3010, push)
	w.fde(c, 0x1000, 0x1010, push)
	w.fde(c, 0x1010, 0x1020, nil)  // same rule as the end of the previous FDE? no: rsp+8 after rsp+16
	w.fde(c, 0x1020, 0x1020, push) // zero length: dropped
	w.fde(c, 0x1020, 0x1030, nil)  // rsp+8 continues: merged
	w.fde(c, 0x2000, 0x2100, push) // overlapped by the next one, which starts later
	w.fde(c, 0x2008, 0x2200, []byte{cfaDefCFAOff, 32})
	tab := w.table()
	checkRows(t, tab, []wantRow{
		{0x1000, rsp(8)}, {0x1001, rsp(16)}, {0x1010, rsp(8)},
		{0x1030, none},
		{0x2000, rsp(8)}, {0x2001, rsp(16)}, {0x2100, rsp(32)},
		{0x2200, none},
		{0x3000, rsp(8)}, {0x3001, rsp(16)}, {0x3010, none},
	})
	if tab.FDEs != 7 {
		t.Errorf("FDEs = %d, want 7", tab.FDEs)
	}
	for pc, want := range map[uint64]Rule{0: none, 0xfff: none, 0x1000: rsp(8), 0x100f: rsp(16), 0x102f: rsp(8), 0x1030: none, 0x20ff: rsp(16), 0x2100: rsp(32), 0x3010: none, ^uint64(0): none} {
		if got := tab.Lookup(pc); got != want {
			t.Errorf("Lookup(%#x) = %+v, want %+v", pc, got, want)
		}
	}
}

func TestSignalAugmentation(t *testing.T) {
	w := newEH()
	c := w.cie("zRS", cat(standardInit, []byte{cfaDefCFAExpr, 2, 0x77, 0x10}))
	w.fde(c, 0x1000, 0x1009, []byte{cfaExpression, 6, 2, 0x77, 0x78, cfaAdvanceLoc | 2, cfaDefCFAOff, 16})
	checkRows(t, w.table(), []wantRow{{0x1000, Rule{CFA: CFASignal}}, {0x1009, none}})
}

// TestPointerEncodings writes the same FDE with each value format and
// modifier the parser accepts for an FDE address.
func TestPointerEncodings(t *testing.T) {
	for _, enc := range []byte{peAbsptr, peUdata8, peSdata8, peUdata4, peSdata4, peUleb128, peSleb128,
		pePcrel | peSdata4, pePcrel | peSdata8, pePcrel | peUdata8, pePcrel | peSleb128} {
		w := newEH()
		w.enc = enc
		c := w.cie("zR", standardInit)
		w.fde(c, 0x1000, 0x1080, nil)
		tab := w.table()
		if tab.Lookup(0x1040) != rsp(8) || tab.Lookup(0x1080) != none || len(tab.Unsupported) != 0 {
			t.Errorf("encoding %#x: rows %+v unsupported %v", enc, tab.Rows, tab.Unsupported)
		}
	}
	// udata2 needs addresses below 64 KiB.
	w := newEH()
	w.enc = peUdata2
	c := w.cie("zR", standardInit)
	w.fde(c, 0x1000, 0x1080, nil)
	if got := w.table().Lookup(0x1000); got != rsp(8) {
		t.Errorf("udata2: %+v", got)
	}
}

func TestAugmentations(t *testing.T) {
	for _, aug := range []string{"", "zR", "zPLR", "zPR", "zRS"} {
		w := newEH()
		w.enc = peUdata8
		var body []byte
		if aug == "zPLR" || aug == "zPR" {
			// personality: udata4 pointer; then optional LSDA encoding, then R.
			data := []byte{peUdata4, 1, 2, 3, 4}
			if aug == "zPLR" {
				data = append(data, peUdata4)
			}
			data = append(data, peUdata8)
			body = cat([]byte{0, 0, 0, 0, 1}, []byte(aug), []byte{0}, uleb(1), sleb(-8), []byte{16}, uleb(uint64(len(data))), data, standardInit)
		}
		var c int
		if body != nil {
			c = w.record(body)
		} else {
			c = w.cie(aug, standardInit)
		}
		if aug == "" {
			// No "z": no augmentation data length in the FDE.
			pos := len(w.data) + 4
			w.record(cat(binary.LittleEndian.AppendUint32(nil, uint32(pos-c)),
				binary.LittleEndian.AppendUint64(nil, 0x1000), binary.LittleEndian.AppendUint64(nil, 0x10)))
		} else {
			w.fde(c, 0x1000, 0x1010, nil)
		}
		want := rsp(8)
		if aug == "zRS" {
			want = Rule{CFA: CFASignal}
		}
		if got := w.table().Lookup(0x1000); got != want {
			t.Errorf("augmentation %q: %+v", aug, got)
		}
	}
}

// debugCIE writes a .debug_frame CIE of the given version (4 adds the
// address and segment sizes; 3 and 4 code the RA register as ULEB).
func debugCIE(w *cfiWriter, version byte) int {
	body := cat([]byte{0xff, 0xff, 0xff, 0xff, version, 0})
	if version == 4 {
		body = append(body, 8, 0)
	}
	body = cat(body, uleb(1), sleb(-8), uleb(16), standardInit)
	return w.record(body)
}

func TestDebugFrameVersions(t *testing.T) {
	for _, v := range []byte{1, 3, 4} {
		w := &cfiWriter{kind: kindDebugFrame}
		c := debugCIE(w, v)
		w.fde(c, 0x1000, 0x1010, []byte{cfaAdvanceLoc | 4, cfaDefCFAOff, 16})
		checkRows(t, w.table(), []wantRow{{0x1000, rsp(8)}, {0x1004, rsp(16)}, {0x1010, none}})
	}
}

func TestDWARF64(t *testing.T) {
	var d []byte
	cie := cat([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 0}, uleb(1), sleb(-8), uleb(16), standardInit)
	d = binary.LittleEndian.AppendUint32(d, 0xffffffff)
	d = binary.LittleEndian.AppendUint64(d, uint64(len(cie)))
	d = append(d, cie...)
	fde := binary.LittleEndian.AppendUint64(nil, 0) // CIE at offset 0
	fde = binary.LittleEndian.AppendUint64(fde, 0x1000)
	fde = binary.LittleEndian.AppendUint64(fde, 0x20)
	fde = append(fde, cfaAdvanceLoc|1, cfaDefCFAOff, 16)
	d = binary.LittleEndian.AppendUint32(d, 0xffffffff)
	d = binary.LittleEndian.AppendUint64(d, uint64(len(fde)))
	d = append(d, fde...)
	checkRows(t, parseFrames(d, 0, kindDebugFrame), []wantRow{{0x1000, rsp(8)}, {0x1001, rsp(16)}, {0x1020, none}})
}

// TestSectionPriority checks that .eh_frame wins over .debug_frame and
// .debug_frame only fills the gaps around it.
func TestSectionPriority(t *testing.T) {
	eh := newEH()
	c := eh.cie("zR", standardInit)
	eh.fde(c, 0x1100, 0x1200, nil)
	dbg := &cfiWriter{kind: kindDebugFrame}
	dc := debugCIE(dbg, 1)
	dbg.fde(dc, 0x1000, 0x1300, []byte{cfaDefCFAOff, 16})
	dbg.fde(dc, 0x1400, 0x1500, []byte{cfaDefCFAOff, 24})
	b := newBuilder()
	b.parseSection(&section{data: eh.data, addr: eh.addr, kind: kindEHFrame})
	b.parseSection(&section{data: dbg.data, kind: kindDebugFrame, prio: 1})
	tab := b.table()
	checkRows(t, tab, []wantRow{
		{0x1000, rsp(16)}, {0x1100, rsp(8)}, {0x1200, rsp(16)}, {0x1300, none},
		{0x1400, rsp(24)}, {0x1500, none},
	})
	if tab.FDEs != 3 {
		t.Errorf("FDEs = %d", tab.FDEs)
	}
}

// TestMalformed feeds broken records. Each must be skipped and counted
// without disturbing the good FDE that follows (when one can be found).
func TestMalformed(t *testing.T) {
	good := func(w *cfiWriter) {
		c := w.cie("zR", standardInit)
		w.fde(c, 0x5000, 0x5010, nil)
	}
	tests := []struct {
		name      string
		write     func(w *cfiWriter)
		malformed int
		goodFound bool
	}{
		{"cie pointer before section", func(w *cfiWriter) {
			w.record(cat(binary.LittleEndian.AppendUint32(nil, 0x1000), make([]byte, 16)))
		}, 1, true},
		{"cie pointer to an fde", func(w *cfiWriter) {
			c := w.cie("zR", standardInit)
			f := len(w.data)
			w.fde(c, 0x1000, 0x1010, nil)
			w.record(cat(binary.LittleEndian.AppendUint32(nil, uint32(len(w.data)+4-f)), make([]byte, 16)))
		}, 1, true},
		{"bad cie version", func(w *cfiWriter) {
			c := w.record(cat([]byte{0, 0, 0, 0, 9, 0}, uleb(1), sleb(-8), []byte{16}))
			w.fde(c, 0x1000, 0x1010, nil)
		}, 1, true},
		{"unknown augmentation", func(w *cfiWriter) {
			c := w.cie("xyz", standardInit)
			w.fde(c, 0x1000, 0x1010, nil)
			w.fde(c, 0x2000, 0x2010, nil)
		}, 2, true},
		{"unknown pointer encoding", func(w *cfiWriter) {
			w.enc = 0x07
			c := w.cie("zR", standardInit)
			w.fde(c, 0x1000, 0x1010, nil)
			w.enc = pePcrel | peSdata4
		}, 1, true},
		{"indirect fde pointer", func(w *cfiWriter) {
			w.enc = peIndirect | peUdata8
			c := w.cie("zR", standardInit)
			w.fde(c, 0x1000, 0x1010, nil)
			w.enc = pePcrel | peSdata4
		}, 1, true},
		{"augmentation longer than cie", func(w *cfiWriter) {
			c := w.record(cat([]byte{0, 0, 0, 0, 1, 'z', 'R', 0}, uleb(1), sleb(-8), []byte{16}, uleb(200)))
			w.fde(c, 0x1000, 0x1010, nil)
		}, 1, true},
		{"range wraps", func(w *cfiWriter) {
			w.enc = peUdata8
			c := w.cie("zR", standardInit)
			pos := len(w.data) + 4
			w.record(cat(binary.LittleEndian.AppendUint32(nil, uint32(pos-c)),
				binary.LittleEndian.AppendUint64(nil, ^uint64(0)-4), binary.LittleEndian.AppendUint64(nil, 16), []byte{0}))
			w.enc = pePcrel | peSdata4
		}, 1, true},
		{"cie initial instructions advance", func(w *cfiWriter) {
			c := w.cie("zR", cat(standardInit, []byte{cfaAdvanceLoc | 1, cfaDefCFAOff, 16}))
			w.fde(c, 0x1000, 0x1010, nil)
		}, 1, true},
		{"cie initial instructions remember state", func(w *cfiWriter) {
			c := w.cie("zR", cat(standardInit, []byte{cfaRemember}))
			w.fde(c, 0x1000, 0x1010, []byte{cfaRestoreState})
		}, 1, true},
		{"length past end", func(w *cfiWriter) {
			w.data = binary.LittleEndian.AppendUint32(w.data, 0x7fffffff)
		}, 1, false},
		{"truncated length", func(w *cfiWriter) {
			w.data = append(w.data, 1, 0)
		}, 1, false},
		{"dwarf64 length past end", func(w *cfiWriter) {
			w.data = binary.LittleEndian.AppendUint32(w.data, 0xffffffff)
			w.data = binary.LittleEndian.AppendUint64(w.data, 1<<62)
		}, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newEH()
			tc.write(w)
			good(w)
			tab := w.table()
			checkInvariants(t, tab)
			if got := tab.Unsupported[malformedFDE]; got != tc.malformed {
				t.Errorf("malformed_fde = %d, want %d (%v)", got, tc.malformed, tab.Unsupported)
			}
			if found := tab.Lookup(0x5008) == rsp(8); found != tc.goodFound {
				t.Errorf("good FDE found = %v, want %v", found, tc.goodFound)
			}
		})
	}
}

func TestZeroTerminator(t *testing.T) {
	w := newEH()
	c := w.cie("zR", standardInit)
	w.fde(c, 0x1000, 0x1010, nil)
	w.data = append(w.data, 0, 0, 0, 0)
	w.fde(c, 0x2000, 0x2010, nil)
	if tab := w.table(); tab.Lookup(0x2000) != rsp(8) {
		t.Errorf("record after a zero terminator inside a section was dropped: %+v", tab.Rows)
	}
	b := newBuilder()
	b.parseSection(&section{data: w.data, addr: w.addr, stopAtZero: true})
	if tab := b.table(); tab.Lookup(0x2000) != none || tab.Lookup(0x1000) != rsp(8) {
		t.Errorf("stopAtZero: %+v", tab.Rows)
	}
}
