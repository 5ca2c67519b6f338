package unwind

// DW_CFA opcodes (DWARF 5, section 6.4.2, plus GNU extensions).
const (
	cfaAdvanceLoc   = 0x40 // high two bits; delta in the low six
	cfaOffset       = 0x80 // high two bits; register in the low six
	cfaRestore      = 0xc0 // high two bits; register in the low six
	cfaNop          = 0x00
	cfaSetLoc       = 0x01
	cfaAdvanceLoc1  = 0x02
	cfaAdvanceLoc2  = 0x03
	cfaAdvanceLoc4  = 0x04
	cfaOffsetExt    = 0x05
	cfaRestoreExt   = 0x06
	cfaUndefined    = 0x07
	cfaSameValue    = 0x08
	cfaRegister     = 0x09
	cfaRemember     = 0x0a
	cfaRestoreState = 0x0b
	cfaDefCFA       = 0x0c
	cfaDefCFAReg    = 0x0d
	cfaDefCFAOff    = 0x0e
	cfaDefCFAExpr   = 0x0f
	cfaExpression   = 0x10
	cfaOffsetExtSF  = 0x11
	cfaDefCFASF     = 0x12
	cfaDefCFAOffSF  = 0x13
	cfaValOffset    = 0x14
	cfaValOffsetSF  = 0x15
	cfaValExpr      = 0x16
	cfaWindowSave   = 0x2d
	cfaArgsSize     = 0x2e
	cfaNegOffsetExt = 0x2f
)

// step decodes and applies one instruction.
func (in *interp) step(r *reader) bool {
	op := r.u8()
	switch op & 0xc0 {
	case cfaAdvanceLoc:
		return in.advance(uint64(op & 0x3f))
	case cfaOffset:
		in.setReg(uint64(op&0x3f), regRule{regOffset, in.factored(clampU(r.uleb()))})
		return r.ok() || in.fail()
	case cfaRestore:
		in.restoreReg(uint64(op & 0x3f))
		return true
	}
	switch op {
	case cfaNop:
		return true
	case cfaSetLoc:
		return in.setLoc(r)
	case cfaAdvanceLoc1:
		return in.advanceBy(r, uint64(r.u8()))
	case cfaAdvanceLoc2:
		return in.advanceBy(r, uint64(r.u16()))
	case cfaAdvanceLoc4:
		return in.advanceBy(r, uint64(r.u32()))
	case cfaRemember:
		return in.remember()
	case cfaRestoreState:
		return in.restoreState()
	case cfaArgsSize:
		r.uleb()
		return r.ok() || in.fail()
	}
	return in.stepCFA(r, op)
}

// stepCFA handles the instructions that define the CFA.
func (in *interp) stepCFA(r *reader, op uint8) bool {
	switch op {
	case cfaDefCFA:
		in.st.cfaReg = r.uleb()
		in.st.cfaOff = clampU(r.uleb())
		in.st.cfa = cfaRegOff
	case cfaDefCFASF:
		in.st.cfaReg = r.uleb()
		in.st.cfaOff = in.factored(r.sleb())
		in.st.cfa = cfaRegOff
	case cfaDefCFAReg:
		in.st.cfaReg = r.uleb()
		if in.st.cfa != cfaRegOff {
			// Only defined on top of a register+offset rule.
			in.st.cfa, in.st.cfaOff = cfaRegOff, 0
		}
	case cfaDefCFAOff:
		in.st.cfaOff = clampU(r.uleb())
	case cfaDefCFAOffSF:
		in.st.cfaOff = in.factored(r.sleb())
	case cfaDefCFAExpr:
		expr := r.take(r.uleb())
		if r.ok() {
			in.defCFAExpression(expr)
		}
	default:
		return in.stepReg(r, op)
	}
	return r.ok() || in.fail()
}

// stepReg handles the instructions that set one register's rule.
func (in *interp) stepReg(r *reader, op uint8) bool {
	reg := r.uleb()
	var rule regRule
	switch op {
	case cfaOffsetExt:
		rule = regRule{regOffset, in.factored(clampU(r.uleb()))}
	case cfaOffsetExtSF:
		rule = regRule{regOffset, in.factored(r.sleb())}
	case cfaNegOffsetExt:
		rule = regRule{regOffset, -in.factored(clampU(r.uleb()))}
	case cfaValOffset:
		rule = regRule{regValOffset, in.factored(clampU(r.uleb()))}
	case cfaValOffsetSF:
		rule = regRule{regValOffset, in.factored(r.sleb())}
	case cfaRestoreExt:
		if r.ok() {
			in.restoreReg(reg)
		}
		return r.ok() || in.fail()
	case cfaUndefined:
		rule = regRule{kind: regUndefined}
	case cfaSameValue:
		rule = regRule{kind: regSame}
	case cfaRegister:
		r.uleb()
		rule = regRule{kind: regRegister}
	case cfaExpression:
		r.skip(r.uleb())
		rule = regRule{kind: regExpression}
	case cfaValExpr:
		r.skip(r.uleb())
		rule = regRule{kind: regValExpression}
	default:
		// Unknown opcodes have unknown operand sizes, and GNU_window_save
		// is SPARC's: either way the rest of the program is unreadable.
		return in.fail()
	}
	if !r.ok() {
		return in.fail()
	}
	in.setReg(reg, rule)
	return true
}

func (in *interp) advanceBy(r *reader, delta uint64) bool {
	if !r.ok() {
		return in.fail()
	}
	return in.advance(delta)
}

func (in *interp) remember() bool {
	if in.depth == maxStateDepth {
		return in.fail()
	}
	in.stack[in.depth] = in.st
	in.depth++
	return true
}

func (in *interp) restoreState() bool {
	if in.depth == 0 {
		return in.fail()
	}
	in.depth--
	in.st = in.stack[in.depth]
	return true
}
