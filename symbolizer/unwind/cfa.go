package unwind

import "bytes"

// x86-64 DWARF register numbers (System V psABI, figure 3.36).
const (
	regRBP = 6
	regRSP = 7
	regRA  = 16
)

// regKind is a register's rule in the DWARF model. regUnset is "not
// mentioned", which the x86-64 ABI treats as same-value for callee-saved
// registers like RBP.
type regKind uint8

const (
	regUnset regKind = iota
	regSame
	regUndefined
	regOffset    // saved at CFA+off
	regValOffset // value is CFA+off
	regRegister  // saved in another register
	regExpression
	regValExpression
)

type regRule struct {
	kind regKind
	off  int64
}

// cfaKindState is how the interpreter currently defines the CFA.
type cfaKindState uint8

const (
	cfaUnset cfaKindState = iota
	cfaRegOff
	cfaPLT
	cfaExpr
)

// frameState tracks only the columns BPF can use; other registers are
// parsed and dropped, which keeps remember/restore copies small.
type frameState struct {
	cfa    cfaKindState
	cfaReg uint64
	cfaOff int64
	rbp    regRule
	ra     regRule
}

// maxStateDepth bounds DW_CFA_remember_state nesting; compilers use one or
// two levels, so deeper nesting is treated as a broken program.
const maxStateDepth = 64

// interp runs CFA programs. One is reused for every FDE so the state stack
// is allocated once.
type interp struct {
	st, init frameState
	stack    [maxStateDepth]frameState
	depth    int
	loc, hi  uint64
	c        *cie
	sec      *section
	progAddr uint64 // address of the program being run
	// cieMode is set while running a CIE's initial instructions, where
	// any location change is an error and no rows are emitted.
	cieMode, cieFailed bool
	rows               []rawRow
	first              int // index in rows of this FDE's first row
}

// rawRow is a row of one FDE before the table is assembled. why records the
// reason a rule was degraded, so it can be counted once the row survives
// overlap resolution and merging.
type rawRow struct {
	pc   uint64
	rule Rule
	why  reason
}

// run interprets the CIE's initial instructions and then the FDE's,
// appending this FDE's rows to in.rows.
func (in *interp) run(sec *section, c *cie, f fdeInfo) {
	in.sec, in.c = sec, c
	in.loc, in.hi = f.lo, f.hi
	in.first = len(in.rows)
	in.depth = 0
	in.st, in.init = c.init, c.init
	if c.signal {
		// glibc's __restore_rt describes every register with an expression
		// over the rt_sigframe; BPF has its own code for that layout.
		in.rows = append(in.rows, rawRow{pc: f.lo, rule: Rule{CFA: CFASignal}})
		return
	}
	if in.exec(f.instr, f.instrOff) {
		in.emit()
	}
}

// initCIE runs a CIE's initial instructions once and keeps the resulting
// state in c.init. Running them per FDE instead would let a file with one
// long CIE and many tiny FDEs cost quadratic time. Initial instructions
// that move the location or leave remembered state have no meaning without
// an FDE, so such a CIE is rejected.
func (in *interp) initCIE(sec *section, c *cie) bool {
	in.sec, in.c = sec, c
	in.st, in.init = frameState{}, frameState{}
	in.depth = 0
	in.cieMode, in.cieFailed = true, false
	ok := in.exec(c.initial, c.initOff)
	in.cieMode = false
	if !ok || in.cieFailed || in.depth != 0 {
		return false
	}
	c.init = in.st
	return true
}

// exec runs one instruction stream. It returns false when interpretation
// stopped early (broken instruction, or the location ran past the FDE).
// progOff is prog's offset in the section, the base of pc-relative set_loc.
func (in *interp) exec(prog []byte, progOff int) bool {
	in.progAddr = in.sec.addr + uint64(progOff)
	r := reader{buf: prog}
	for !r.atEnd() {
		if !in.step(&r) {
			return false
		}
	}
	return true
}

// fail marks the rest of the FDE unusable: once an instruction can't be
// decoded, nothing after it can be trusted.
func (in *interp) fail() bool {
	if in.cieMode {
		in.cieFailed = true
		return false
	}
	in.emitRule(Rule{CFA: CFAInvalid}, reasonBadInstruction)
	return false
}

// advance moves the location forward by delta code units, first emitting
// the row for the current location.
func (in *interp) advance(delta uint64) bool {
	if in.cieMode {
		return in.fail()
	}
	in.emit()
	// codeAlign <= maxAlign, so only the addition can overflow.
	next := in.loc + delta*in.c.codeAlign
	if next < in.loc {
		return false
	}
	in.loc = next
	return in.loc < in.hi
}

// setLoc handles DW_CFA_set_loc; going backwards is malformed.
func (in *interp) setLoc(r *reader) bool {
	var loc uint64
	var ok bool
	if in.sec.kind == kindEHFrame {
		loc, ok = readPointer(r, in.c.fdeEnc, in.progAddr, in.sec.bases)
	} else {
		loc, ok = readAddr(r, in.c.addrSize), r.ok()
	}
	if !ok || loc < in.loc || in.cieMode {
		return in.fail()
	}
	in.emit()
	in.loc = loc
	return in.loc < in.hi
}

// emit records the current state as a row at the current location.
func (in *interp) emit() {
	rule, why := in.st.rule(in.c.raReg)
	in.emitRule(rule, why)
}

// emitRule appends a row, replacing one at the same location (a zero
// advance) and dropping one that changes nothing.
func (in *interp) emitRule(rule Rule, why reason) {
	n := len(in.rows)
	if n > in.first && in.rows[n-1].pc == in.loc {
		in.rows = in.rows[:n-1]
		n--
	}
	if n > in.first && in.rows[n-1].rule == rule && in.rows[n-1].why == why {
		return
	}
	in.rows = append(in.rows, rawRow{pc: in.loc, rule: rule, why: why})
}

// pltExpr10/11 are glibc's lazy-binding PLT CFA expressions: the CFA is
// RSP+8, plus 8 once the stub has pushed the relocation index (at offset
// 10 or 11 within its 16-byte slot).
var (
	pltExpr11 = []byte{0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22}
	pltExpr10 = []byte{0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3a, 0x2a, 0x33, 0x24, 0x22}
)

func (in *interp) defCFAExpression(expr []byte) {
	in.st.cfaOff = 0
	switch {
	case bytes.Equal(expr, pltExpr11):
		in.st.cfa, in.st.cfaOff = cfaPLT, 11
	case bytes.Equal(expr, pltExpr10):
		in.st.cfa, in.st.cfaOff = cfaPLT, 10
	default:
		in.st.cfa = cfaExpr
	}
}

// setReg applies a rule to register reg if it is one we track.
func (in *interp) setReg(reg uint64, rule regRule) {
	switch reg {
	case regRBP:
		in.st.rbp = rule
	case in.c.raReg:
		in.st.ra = rule
	}
}

// restoreReg resets reg to its rule after the CIE's initial instructions.
func (in *interp) restoreReg(reg uint64) {
	switch reg {
	case regRBP:
		in.st.rbp = in.init.rbp
	case in.c.raReg:
		in.st.ra = in.init.ra
	}
}

// factored multiplies a file value by the CIE's data alignment. Values are
// clamped first so the product can't overflow int64; anything clamped is
// far outside int32 and is reported as an overflow later.
func (in *interp) factored(v int64) int64 {
	const lim = 1 << 40
	v = min(max(v, -lim), lim)
	return v * in.c.dataAlign
}

// clampU converts an unsigned file value to int64 without wrapping.
func clampU(v uint64) int64 {
	const lim = 1 << 40
	if v > lim {
		return lim
	}
	return int64(v)
}
