package unwind

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// refRow is one row of readelf --debug-dump=frames-interp: the CFA, rbp
// and ra columns as readelf prints them ("" when the column is absent).
type refRow struct {
	loc          uint64
	cfa, rbp, ra string
}

// refFDE is one FDE as readelf interprets it.
type refFDE struct {
	lo, hi uint64
	signal bool
	rows   []refRow
}

// refParser reads readelf's frames-interp output. It keeps the CIE rows
// because readelf prints no table for an FDE whose program is all nops:
// such an FDE runs with its CIE's initial state.
type refParser struct {
	cies   map[string]refFDE // by CIE offset
	fdes   []refFDE
	cur    *refFDE
	header []string
}

func parseReadelf(r io.Reader) ([]refFDE, error) {
	p := &refParser{cies: make(map[string]refFDE)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var pendingCIE string
	for sc.Scan() {
		if err := p.line(sc.Text(), &pendingCIE); err != nil {
			return nil, err
		}
	}
	p.flush(pendingCIE)
	return p.fdes, sc.Err()
}

func (p *refParser) flush(cieOff string) {
	if p.cur == nil {
		return
	}
	if cieOff != "" {
		p.cies[cieOff] = *p.cur
	} else {
		p.fdes = append(p.fdes, *p.cur)
	}
	p.cur = nil
}

// fields splits a readelf line; "r9 (r9)" (a register saved in another
// register) is one column although it contains a space.
func fields(l string) []string {
	var out []string
	for _, w := range strings.Fields(l) {
		if strings.HasPrefix(w, "(") && len(out) > 0 {
			out[len(out)-1] += " " + w
			continue
		}
		out = append(out, w)
	}
	return out
}

func (p *refParser) line(l string, pendingCIE *string) error {
	f := fields(l)
	switch {
	case len(f) >= 5 && f[3] == "CIE":
		p.flush(*pendingCIE)
		*pendingCIE = f[0]
		aug := strings.Trim(f[4], `"`)
		p.cur = &refFDE{signal: strings.Contains(aug, "S") && strings.HasPrefix(aug, "z")}
	case len(f) >= 6 && f[3] == "FDE":
		p.flush(*pendingCIE)
		*pendingCIE = ""
		return p.startFDE(f)
	case len(f) == 3 && f[1] == "ZERO" && f[2] == "terminator":
		// .eh_frame of libLLVM has terminators between input sections.
		p.flush(*pendingCIE)
		*pendingCIE = ""
		p.header = nil
	case len(f) > 0 && f[0] == "LOC":
		p.header = f
	case len(f) >= 2 && p.cur != nil && p.header != nil && isHex(f[0]):
		if len(f) != len(p.header) {
			return fmt.Errorf("row %q does not match header %q", l, p.header)
		}
		p.cur.rows = append(p.cur.rows, p.row(f))
	}
	return nil
}

func (p *refParser) startFDE(f []string) error {
	cie := p.cies[strings.TrimPrefix(f[4], "cie=")]
	rng := strings.Split(strings.TrimPrefix(f[5], "pc="), "..")
	if len(rng) != 2 {
		return fmt.Errorf("bad FDE line %q", strings.Join(f, " "))
	}
	lo, err1 := strconv.ParseUint(rng[0], 16, 64)
	hi, err2 := strconv.ParseUint(rng[1], 16, 64)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bad FDE range %q", f[5])
	}
	p.cur = &refFDE{lo: lo, hi: hi, signal: cie.signal}
	if n := len(cie.rows); n > 0 {
		// Used only if the FDE prints no rows of its own.
		last := cie.rows[n-1]
		last.loc = lo
		p.cur.rows = []refRow{last}
		p.header = nil
	}
	p.cur.rows = p.cur.rows[:len(p.cur.rows):len(p.cur.rows)]
	return nil
}

func (p *refParser) row(f []string) refRow {
	loc, _ := strconv.ParseUint(f[0], 16, 64)
	r := refRow{loc: loc, cfa: f[1]}
	for i, name := range p.header {
		switch name {
		case "rbp":
			r.rbp = f[i]
		case "ra":
			r.ra = f[i]
		}
	}
	// The first real row replaces the CIE's stand-in row.
	if len(p.cur.rows) == 1 && p.cur.rows[0].loc == loc && cap(p.cur.rows) == 1 {
		p.cur.rows = p.cur.rows[:0:0]
	}
	return r
}

func isHex(s string) bool {
	_, err := strconv.ParseUint(s, 16, 64)
	return err == nil
}

// checkAgainstReadelf compares Lookup with readelf at every row start and
// at a point inside every row, for every FDE.
func checkAgainstReadelf(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not present: %v", path, err)
	}
	readelf, err := exec.LookPath("readelf")
	if err != nil {
		t.Skip("readelf (binutils) not installed")
	}
	out, err := exec.Command(readelf, "-W", "--debug-dump=frames-interp", path).Output()
	// readelf exits 1 on some files while printing every frame (e.g. when
	// a debug section it also looked for is absent): judge by the output.
	if err != nil && len(out) == 0 {
		t.Fatalf("readelf %s: %v", path, err)
	}
	ref, err := parseReadelf(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := Build(f)
	if err != nil {
		t.Fatal(err)
	}
	c := newComparer(f, ref)
	for _, fde := range ref {
		c.checkFDE(t, tab, fde)
	}
	c.checkGaps(t, tab, ref)
	t.Logf("%s: %d FDEs from readelf, %d rows in table, unsupported %v", path, len(ref), len(tab.Rows), tab.Unsupported)
	t.Logf("agreement: %v", c.counts)
	if c.counts["disagree"] > 0 {
		t.Errorf("%d sample PCs disagree with readelf", c.counts["disagree"])
	}
	if c.counts["agree"] == 0 {
		t.Errorf("no sample PC compared")
	}
}

type comparer struct {
	plt    []*elf.Section
	counts map[string]int
	multi  func(pc uint64) bool
	shown  int
}

func newComparer(f *elf.File, ref []refFDE) *comparer {
	c := &comparer{counts: make(map[string]int)}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".plt") {
			c.plt = append(c.plt, s)
		}
	}
	c.multi = overlapIndex(ref)
	return c
}

// overlapIndex reports whether more than one FDE covers pc; the table
// resolves those by rule, so readelf's per-FDE view is not the reference.
func overlapIndex(ref []refFDE) func(uint64) bool {
	type iv struct{ lo, hi uint64 }
	ivs := make([]iv, 0, len(ref))
	for _, f := range ref {
		if f.hi > f.lo {
			ivs = append(ivs, iv{f.lo, f.hi})
		}
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].lo < ivs[j].lo })
	var overl []iv
	var maxHi uint64
	for _, v := range ivs {
		if v.lo < maxHi {
			overl = append(overl, iv{v.lo, min(maxHi, v.hi)})
		}
		maxHi = max(maxHi, v.hi)
	}
	return func(pc uint64) bool {
		for _, v := range overl {
			if pc >= v.lo && pc < v.hi {
				return true
			}
		}
		return false
	}
}

func (c *comparer) inPLT(pc uint64) bool {
	for _, s := range c.plt {
		if pc >= s.Addr && pc < s.Addr+s.Size {
			return true
		}
	}
	return false
}

func (c *comparer) checkFDE(t *testing.T, tab *Table, fde refFDE) {
	for i, row := range fde.rows {
		end := fde.hi
		if i+1 < len(fde.rows) {
			end = fde.rows[i+1].loc
		}
		if row.loc >= end {
			continue
		}
		for _, pc := range []uint64{row.loc, row.loc + (end-row.loc)/2, end - 1} {
			if c.multi(pc) {
				c.counts["skipped_overlap"]++
				continue
			}
			c.checkPC(t, pc, tab.Lookup(pc), fde.signal, row)
		}
	}
}

func (c *comparer) checkPC(t *testing.T, pc uint64, got Rule, signal bool, want refRow) {
	cat, ok := c.classify(pc, got, signal, want)
	if !ok {
		c.counts["disagree"]++
		if c.shown < 20 {
			c.shown++
			t.Errorf("pc %#x: got %+v, readelf cfa=%s rbp=%s ra=%s signal=%v", pc, got, want.cfa, want.rbp, want.ra, signal)
		}
		return
	}
	c.counts["agree"]++
	if cat != "" {
		c.counts[cat]++
	}
}

// classify decides whether got matches readelf's row, naming the category
// of any documented degradation.
func (c *comparer) classify(pc uint64, got Rule, signal bool, want refRow) (string, bool) {
	switch {
	case signal:
		return "signal", got.CFA == CFASignal
	case want.ra == "u":
		return "stop", got.CFA == CFAStop
	case want.ra != "c-8":
		return "ra_other_invalid", got.CFA == CFAInvalid
	case want.cfa == "exp" && c.inPLT(pc):
		return "plt", got.CFA == CFAPLT && (got.CFAOffset == 10 || got.CFAOffset == 11)
	case want.cfa == "exp":
		return "cfa_expression_invalid", got.CFA == CFAInvalid
	}
	reg, off, ok := splitCFA(want.cfa)
	switch {
	case !ok:
		return "", false
	case reg == "rsp" && got.CFA == CFARSP && int64(got.CFAOffset) == off,
		reg == "rbp" && got.CFA == CFARBP && int64(got.CFAOffset) == off:
		return rbpCategory(got, want.rbp)
	case reg != "rsp" && reg != "rbp":
		return "cfa_register_other_invalid", got.CFA == CFAInvalid
	}
	return "", false
}

func splitCFA(s string) (string, int64, bool) {
	i := strings.IndexAny(s, "+-")
	if i < 0 {
		return "", 0, false
	}
	off, err := strconv.ParseInt(s[i:], 10, 64)
	return s[:i], off, err == nil
}

// rbpCategory compares the RBP rule. readelf prints "u" both for a register
// never mentioned (our RBPSame) and for DW_CFA_undefined (RBPUndefined).
func rbpCategory(got Rule, want string) (string, bool) {
	switch {
	case want == "" || want == "u":
		return "", got.RBP == RBPSame || got.RBP == RBPUndefined
	case want == "s":
		return "", got.RBP == RBPSame
	case strings.HasPrefix(want, "c"):
		off, err := strconv.ParseInt(want[1:], 10, 32)
		return "", err == nil && got.RBP == RBPAtCFA && int64(got.RBPOffset) == off
	default: // exp, vexp, v+N, another register
		return "rbp_degraded", got.RBP == RBPUndefined
	}
}

func TestReadelfLibc(t *testing.T) {
	checkAgainstReadelf(t, "/lib/x86_64-linux-gnu/libc.so.6")
}

func TestReadelfLibstdcxx(t *testing.T) {
	checkAgainstReadelf(t, "/usr/lib/x86_64-linux-gnu/libstdc++.so.6")
}

func TestReadelfLibpython(t *testing.T) {
	checkAgainstReadelf(t, "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0")
}

func TestReadelfPython311(t *testing.T) {
	checkAgainstReadelf(t, "/usr/bin/python3.11")
}

// checkGaps asserts that addresses no FDE covers are CFANone: before the
// first FDE, between FDEs and after the last.
func (c *comparer) checkGaps(t *testing.T, tab *Table, ref []refFDE) {
	type iv struct{ lo, hi uint64 }
	var ivs []iv
	for _, f := range ref {
		if f.hi > f.lo {
			ivs = append(ivs, iv{f.lo, f.hi})
		}
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].lo < ivs[j].lo })
	var end uint64
	for _, v := range ivs {
		if v.lo > end {
			for _, pc := range []uint64{end, v.lo - 1} {
				c.checkNone(t, tab, pc)
			}
		}
		end = max(end, v.hi)
	}
	c.checkNone(t, tab, end)
}

func (c *comparer) checkNone(t *testing.T, tab *Table, pc uint64) {
	if got := tab.Lookup(pc); got.CFA != CFANone {
		c.counts["disagree"]++
		t.Errorf("pc %#x outside every FDE: got %+v", pc, got)
		return
	}
	c.counts["gap"]++
}

// The large files take a few seconds of readelf and comparison each.
func TestReadelfBig(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping node and libLLVM")
	}
	for _, path := range []string{"/usr/bin/node", "/usr/lib/llvm-19/lib/libLLVM.so.19.1"} {
		t.Run(filepath.Base(path), func(t *testing.T) { checkAgainstReadelf(t, path) })
	}
}
