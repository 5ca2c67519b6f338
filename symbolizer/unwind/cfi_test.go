package unwind

import (
	"encoding/binary"
	"maps"
	"testing"
)

// cfiWriter assembles .eh_frame or .debug_frame bytes by hand, so each test
// states exactly which instructions it exercises.
type cfiWriter struct {
	data []byte
	addr uint64 // section address, for pc-relative encodings
	kind sectionKind
	enc  byte // FDE pointer encoding of the CIEs written (eh_frame)
}

// standardInit is what GCC puts in every x86-64 CIE: CFA = rsp+8, return
// address saved at CFA-8.
var standardInit = []byte{cfaDefCFA, 7, 8, cfaOffset | 16, 1}

func uleb(v uint64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, c|0x80)
			continue
		}
		return append(out, c)
	}
}

func sleb(v int64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// record appends a length-prefixed record (32-bit DWARF) padded with nops
// to 8 bytes, and returns its offset.
func (w *cfiWriter) record(body []byte) int {
	off := len(w.data)
	for (4+len(body))%8 != 0 {
		body = append(body, cfaNop)
	}
	w.data = binary.LittleEndian.AppendUint32(w.data, uint32(len(body)))
	w.data = append(w.data, body...)
	return off
}

// cie writes a version-1 CIE with code alignment 1, data alignment -8 and
// return-address register 16.
func (w *cfiWriter) cie(aug string, init []byte) int {
	id := []byte{0, 0, 0, 0}
	if w.kind == kindDebugFrame {
		id = []byte{0xff, 0xff, 0xff, 0xff}
	}
	body := cat(id, []byte{1}, []byte(aug), []byte{0}, uleb(1), sleb(-8), []byte{16})
	if len(aug) > 0 && aug[0] == 'z' {
		var augData []byte
		for _, c := range aug[1:] {
			if c == 'R' {
				augData = append(augData, w.enc)
			}
		}
		body = cat(body, uleb(uint64(len(augData))), augData)
	}
	return w.record(cat(body, init))
}

// fde writes an FDE for [lo, hi) using the CIE at cieOff.
func (w *cfiWriter) fde(cieOff int, lo, hi uint64, prog []byte) {
	pos := len(w.data) + 4 // where the CIE pointer field starts
	var body []byte
	if w.kind == kindDebugFrame {
		body = binary.LittleEndian.AppendUint32(body, uint32(cieOff))
		body = binary.LittleEndian.AppendUint64(body, lo)
		body = binary.LittleEndian.AppendUint64(body, hi-lo)
	} else {
		body = binary.LittleEndian.AppendUint32(body, uint32(pos-cieOff))
		fieldAddr := w.addr + uint64(pos+4)
		body = append(body, w.encode(lo, fieldAddr)...)
		body = append(body, w.encode(hi-lo, 0)[:w.size()]...)
		body = append(body, 0) // augmentation data length
	}
	w.record(cat(body, prog))
}

func (w *cfiWriter) size() int {
	switch w.enc & 0x0f {
	case peUdata2, peSdata2:
		return 2
	case peUdata4, peSdata4:
		return 4
	}
	return 8
}

// encode writes v in w.enc; pcrel encodings subtract fieldAddr.
func (w *cfiWriter) encode(v, fieldAddr uint64) []byte {
	if w.enc&0x70 == pePcrel && fieldAddr != 0 {
		v -= fieldAddr
	}
	switch w.enc & 0x0f {
	case peUleb128:
		return uleb(v)
	case peSleb128:
		return sleb(int64(v))
	}
	return binary.LittleEndian.AppendUint64(nil, v)[:w.size()]
}

func (w *cfiWriter) table() *Table { return parseFrames(w.data, w.addr, w.kind) }

func newEH() *cfiWriter {
	return &cfiWriter{addr: 0x400000, kind: kindEHFrame, enc: pePcrel | peSdata4}
}

func rsp(off int32) Rule { return Rule{CFA: CFARSP, CFAOffset: off} }

func rspRBP(off, rbp int32) Rule {
	return Rule{CFA: CFARSP, CFAOffset: off, RBP: RBPAtCFA, RBPOffset: rbp}
}

type wantRow struct {
	pc   uint64
	rule Rule
}

func checkRows(t *testing.T, tab *Table, want []wantRow) {
	t.Helper()
	checkInvariants(t, tab)
	if len(tab.Rows) != len(want) {
		t.Fatalf("got %d rows %+v, want %d %+v", len(tab.Rows), tab.Rows, len(want), want)
	}
	for i, w := range want {
		if tab.Rows[i].PC != w.pc || tab.Rows[i].Rule != w.rule {
			t.Errorf("row %d: got %#x %+v, want %#x %+v", i, tab.Rows[i].PC, tab.Rows[i].Rule, w.pc, w.rule)
		}
	}
}

const lo, hi = 0x1000, 0x1100

var none = Rule{}

// TestOps runs one FDE per case through the standard CIE.
func TestOps(t *testing.T) {
	plt11 := cat([]byte{cfaDefCFAExpr}, uleb(uint64(len(pltExpr11))), pltExpr11)
	plt10 := cat([]byte{cfaDefCFAExpr}, uleb(uint64(len(pltExpr10))), pltExpr10)
	otherExpr := []byte{cfaDefCFAExpr, 2, 0x77, 0x10} // breg7 16
	inv := Rule{CFA: CFAInvalid}
	tests := []struct {
		name   string
		prog   []byte
		want   []wantRow
		reason map[string]int
	}{
		{"empty", nil, []wantRow{{lo, rsp(8)}, {hi, none}}, nil},
		{"nop and args_size", []byte{cfaNop, cfaArgsSize, 16, cfaNop}, []wantRow{{lo, rsp(8)}, {hi, none}}, nil},
		{"advance_loc def_cfa_offset", []byte{cfaAdvanceLoc | 1, cfaDefCFAOff, 16, cfaAdvanceLoc | 3, cfaDefCFAOff, 8},
			[]wantRow{{lo, rsp(8)}, {lo + 1, rsp(16)}, {lo + 4, rsp(8)}, {hi, none}}, nil},
		{"advance_loc1/2/4", []byte{cfaAdvanceLoc1, 0x10, cfaDefCFAOff, 16, cfaAdvanceLoc2, 0x10, 0, cfaDefCFAOff, 24, cfaAdvanceLoc4, 0x10, 0, 0, 0, cfaDefCFAOff, 32},
			[]wantRow{{lo, rsp(8)}, {lo + 0x10, rsp(16)}, {lo + 0x20, rsp(24)}, {lo + 0x30, rsp(32)}, {hi, none}}, nil},
		{"advance past end", []byte{cfaAdvanceLoc2, 0, 2, cfaDefCFAOff, 16}, []wantRow{{lo, rsp(8)}, {hi, none}}, nil},
		{"set_loc", cat([]byte{cfaSetLoc}, setLocOperand(lo+0x20, 1), []byte{cfaDefCFAOff, 16}),
			[]wantRow{{lo, rsp(8)}, {lo + 0x20, rsp(16)}, {hi, none}}, nil},
		{"set_loc backwards", cat([]byte{cfaAdvanceLoc | 8, cfaSetLoc}, setLocOperand(lo+4, 2), []byte{cfaDefCFAOff, 16}),
			[]wantRow{{lo, rsp(8)}, {lo + 8, inv}, {hi, none}}, map[string]int{"bad_instruction": 1}},
		{"def_cfa rbp", []byte{cfaAdvanceLoc | 1, cfaDefCFA, 6, 16},
			[]wantRow{{lo, rsp(8)}, {lo + 1, Rule{CFA: CFARBP, CFAOffset: 16}}, {hi, none}}, nil},
		{"def_cfa_register", []byte{cfaAdvanceLoc | 1, cfaDefCFAOff, 16, cfaOffset | 6, 2, cfaAdvanceLoc | 3, cfaDefCFAReg, 6},
			[]wantRow{{lo, rsp(8)}, {lo + 1, rspRBP(16, -16)}, {lo + 4, Rule{CFA: CFARBP, CFAOffset: 16, RBP: RBPAtCFA, RBPOffset: -16}}, {hi, none}}, nil},
		{"def_cfa_sf and offset_sf", cat([]byte{cfaAdvanceLoc | 1, cfaDefCFASF, 7}, sleb(-3), []byte{cfaAdvanceLoc | 1, cfaDefCFAOffSF}, sleb(-4)),
			[]wantRow{{lo, rsp(8)}, {lo + 1, rsp(24)}, {lo + 2, rsp(32)}, {hi, none}}, nil},
		{"offset_extended", []byte{cfaOffsetExt, 6, 3}, []wantRow{{lo, rspRBP(8, -24)}, {hi, none}}, nil},
		{"offset_extended_sf", cat([]byte{cfaOffsetExtSF, 6}, sleb(2)), []wantRow{{lo, rspRBP(8, -16)}, {hi, none}}, nil},
		{"negative_offset_extended", []byte{cfaNegOffsetExt, 6, 2}, []wantRow{{lo, rspRBP(8, 16)}, {hi, none}}, nil},
		{"restore", []byte{cfaOffset | 6, 2, cfaAdvanceLoc | 1, cfaRestore | 6},
			[]wantRow{{lo, rspRBP(8, -16)}, {lo + 1, rsp(8)}, {hi, none}}, nil},
		{"restore_extended", []byte{cfaOffset | 6, 2, cfaAdvanceLoc | 1, cfaRestoreExt, 6},
			[]wantRow{{lo, rspRBP(8, -16)}, {lo + 1, rsp(8)}, {hi, none}}, nil},
		{"same_value", []byte{cfaOffset | 6, 2, cfaAdvanceLoc | 1, cfaSameValue, 6},
			[]wantRow{{lo, rspRBP(8, -16)}, {lo + 1, rsp(8)}, {hi, none}}, nil},
		{"undefined rbp", []byte{cfaUndefined, 6}, []wantRow{{lo, Rule{CFA: CFARSP, CFAOffset: 8, RBP: RBPUndefined}}, {hi, none}}, nil},
		{"undefined ra", []byte{cfaUndefined, 16}, []wantRow{{lo, Rule{CFA: CFAStop}}, {hi, none}}, nil},
		{"val_offset rbp", []byte{cfaValOffset, 6, 2}, []wantRow{{lo, Rule{CFA: CFARSP, CFAOffset: 8, RBP: RBPUndefined}}, {hi, none}}, map[string]int{"rbp_expression": 1}},
		{"val_offset_sf rbp", cat([]byte{cfaValOffsetSF, 6}, sleb(-2)), []wantRow{{lo, Rule{CFA: CFARSP, CFAOffset: 8, RBP: RBPUndefined}}, {hi, none}}, map[string]int{"rbp_expression": 1}},
		{"register rbp", []byte{cfaRegister, 6, 3}, []wantRow{{lo, Rule{CFA: CFARSP, CFAOffset: 8, RBP: RBPUndefined}}, {hi, none}}, map[string]int{"rbp_in_register": 1}},
		{"expression rbp", []byte{cfaExpression, 6, 2, 0x76, 0x00}, []wantRow{{lo, Rule{CFA: CFARSP, CFAOffset: 8, RBP: RBPUndefined}}, {hi, none}}, map[string]int{"rbp_expression": 1}},
		{"val_expression rbp", []byte{cfaValExpr, 6, 2, 0x76, 0x00}, []wantRow{{lo, Rule{CFA: CFARSP, CFAOffset: 8, RBP: RBPUndefined}}, {hi, none}}, map[string]int{"rbp_expression": 1}},
		{"other registers ignored", []byte{cfaOffset | 3, 2, cfaRegister, 12, 13, cfaExpression, 14, 1, 0x30, cfaUndefined, 15},
			[]wantRow{{lo, rsp(8)}, {hi, none}}, nil},
		{"remember and restore state", []byte{cfaAdvanceLoc | 1, cfaDefCFAOff, 16, cfaOffset | 6, 2, cfaAdvanceLoc | 1, cfaRemember, cfaDefCFAOff, 8, cfaRestore | 6, cfaAdvanceLoc | 1, cfaRestoreState},
			[]wantRow{{lo, rsp(8)}, {lo + 1, rspRBP(16, -16)}, {lo + 2, rsp(8)}, {lo + 3, rspRBP(16, -16)}, {hi, none}}, nil},
		{"restore_state on empty stack", []byte{cfaAdvanceLoc | 1, cfaRestoreState},
			[]wantRow{{lo, rsp(8)}, {lo + 1, inv}, {hi, none}}, map[string]int{"bad_instruction": 1}},
		{"plt lit11", plt11, []wantRow{{lo, Rule{CFA: CFAPLT, CFAOffset: 11}}, {hi, none}}, nil},
		{"plt lit10", cat([]byte{cfaAdvanceLoc | 6}, plt10), []wantRow{{lo, rsp(8)}, {lo + 6, Rule{CFA: CFAPLT, CFAOffset: 10}}, {hi, none}}, nil},
		{"other cfa expression", otherExpr, []wantRow{{lo, inv}, {hi, none}}, map[string]int{"cfa_expression": 1}},
		{"expression then def_cfa", cat(otherExpr, []byte{cfaAdvanceLoc | 1, cfaDefCFA, 7, 16}),
			[]wantRow{{lo, inv}, {lo + 1, rsp(16)}, {hi, none}}, map[string]int{"cfa_expression": 1}},
		{"cfa register other", []byte{cfaAdvanceLoc | 1, cfaDefCFA, 5, 0}, []wantRow{{lo, rsp(8)}, {lo + 1, inv}, {hi, none}}, map[string]int{"cfa_register_other": 1}},
		{"ra elsewhere", []byte{cfaOffset | 16, 2}, []wantRow{{lo, inv}, {hi, none}}, map[string]int{"ra_not_at_cfa_minus_8": 1}},
		{"ra in register", []byte{cfaRegister, 16, 1}, []wantRow{{lo, inv}, {hi, none}}, map[string]int{"ra_not_at_cfa_minus_8": 1}},
		{"cfa offset overflow", cat([]byte{cfaDefCFA, 7}, uleb(1<<33)), []wantRow{{lo, inv}, {hi, none}}, map[string]int{"cfa_offset_overflow": 1}},
		{"huge uleb", cat([]byte{cfaDefCFA, 7}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}), []wantRow{{lo, inv}, {hi, none}}, map[string]int{"cfa_offset_overflow": 1}},
		{"window_save", []byte{cfaAdvanceLoc | 2, cfaWindowSave, cfaDefCFAOff, 16}, []wantRow{{lo, rsp(8)}, {lo + 2, inv}, {hi, none}}, map[string]int{"bad_instruction": 1}},
		{"unknown opcode", []byte{cfaAdvanceLoc | 2, 0x3f, 1}, []wantRow{{lo, rsp(8)}, {lo + 2, inv}, {hi, none}}, map[string]int{"bad_instruction": 1}},
		{"truncated operand", []byte{cfaAdvanceLoc | 2, cfaDefCFAExpr, 50, 0x77}, []wantRow{{lo, rsp(8)}, {lo + 2, inv}, {hi, none}}, map[string]int{"bad_instruction": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newEH()
			c := w.cie("zR", standardInit)
			w.fde(c, lo, hi, tc.prog)
			tab := w.table()
			checkRows(t, tab, tc.want)
			want := tc.reason
			if want == nil {
				want = map[string]int{}
			}
			if !maps.Equal(tab.Unsupported, want) {
				t.Errorf("unsupported %v, want %v", tab.Unsupported, want)
			}
			if tab.FDEs != 1 {
				t.Errorf("FDEs = %d", tab.FDEs)
			}
		})
	}
}

// setLocOperand encodes target for a DW_CFA_set_loc whose operand is at
// byte at of the program of the first FDE newEH writes after its CIE
// (pcrel|sdata4, relative to the operand's own address).
func setLocOperand(target uint64, at int) []byte {
	const progStart = 0x400000 + 24 + 4 + 4 + 4 + 4 + 1 // CIE, FDE length, CIE ptr, pc, range, aug length
	return binary.LittleEndian.AppendUint32(nil, uint32(target-uint64(progStart+at)))
}
