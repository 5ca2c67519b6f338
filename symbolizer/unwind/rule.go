package unwind

import "math"

// reason is why a row lost precision; the names are the keys of
// Table.Unsupported.
type reason uint8

const (
	reasonNone reason = iota
	reasonCFAExpression
	reasonCFARegisterOther
	reasonCFAUnset
	reasonCFAOffsetOverflow
	reasonRANotAtCFA
	reasonRBPExpression
	reasonRBPInRegister
	reasonRBPOffsetOverflow
	reasonBadInstruction
	numReasons
)

var reasonNames = [numReasons]string{
	reasonCFAExpression:     "cfa_expression",
	reasonCFARegisterOther:  "cfa_register_other",
	reasonCFAUnset:          "cfa_unset",
	reasonCFAOffsetOverflow: "cfa_offset_overflow",
	reasonRANotAtCFA:        "ra_not_at_cfa_minus_8",
	reasonRBPExpression:     "rbp_expression",
	reasonRBPInRegister:     "rbp_in_register",
	reasonRBPOffsetOverflow: "rbp_offset_overflow",
	reasonBadInstruction:    "bad_instruction",
}

// Key names used for whole records rather than rows.
const (
	malformedFDE      = "malformed_fde"
	unreadableSection = "section_unreadable"
)

func fitsInt32(v int64) bool { return v >= math.MinInt32 && v <= math.MaxInt32 }

// invalid is the one rule every unusable row maps to, so that neighbouring
// unusable rows merge regardless of what made them unusable.
func invalid(why reason) (Rule, reason) { return Rule{CFA: CFAInvalid}, why }

// rule maps the DWARF state to what BPF can execute.
func (st *frameState) rule(raReg uint64) (Rule, reason) {
	if st.ra.kind == regUndefined {
		// The ABI's marker for the outermost frame (_start, thread entry).
		return Rule{CFA: CFAStop}, reasonNone
	}
	r, why := st.cfaRule()
	if r.CFA == CFAInvalid {
		return r, why
	}
	if raReg != regRA || st.ra.kind != regOffset || st.ra.off != -8 {
		return invalid(reasonRANotAtCFA)
	}
	r.RBP, r.RBPOffset, why = st.rbpRule()
	return r, why
}

func (st *frameState) cfaRule() (Rule, reason) {
	switch st.cfa {
	case cfaPLT:
		return Rule{CFA: CFAPLT, CFAOffset: int32(st.cfaOff)}, reasonNone
	case cfaExpr:
		return invalid(reasonCFAExpression)
	case cfaUnset:
		return invalid(reasonCFAUnset)
	}
	var kind CFAKind
	switch st.cfaReg {
	case regRSP:
		kind = CFARSP
	case regRBP:
		kind = CFARBP
	default:
		return invalid(reasonCFARegisterOther)
	}
	if !fitsInt32(st.cfaOff) {
		return invalid(reasonCFAOffsetOverflow)
	}
	return Rule{CFA: kind, CFAOffset: int32(st.cfaOff)}, reasonNone
}

// rbpRule degrades anything but "saved at CFA+n" to undefined: the walk can
// go on without RBP, it only loses it for frames that use it as the CFA.
func (st *frameState) rbpRule() (RBPKind, int32, reason) {
	switch st.rbp.kind {
	case regUnset, regSame:
		return RBPSame, 0, reasonNone
	case regUndefined:
		return RBPUndefined, 0, reasonNone
	case regOffset:
		if !fitsInt32(st.rbp.off) {
			return RBPUndefined, 0, reasonRBPOffsetOverflow
		}
		return RBPAtCFA, int32(st.rbp.off), reasonNone
	case regRegister:
		return RBPUndefined, 0, reasonRBPInRegister
	default:
		return RBPUndefined, 0, reasonRBPExpression
	}
}
