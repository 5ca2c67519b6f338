package python

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lineDump is what testdata/lines.py prints: the line tables an
// interpreter compiled and the line it gives each instruction.
type lineDump struct {
	Version string     `json:"version"`
	Codes   []lineCode `json:"codes"`
}

type lineCode struct {
	Name        string  `json:"name"`
	FirstLineNo int32   `json:"firstlineno"`
	Table       string  `json:"table"`
	CodeBytes   int     `json:"code_bytes"`
	Addr2Line   []int32 `json:"addr2line"`          // PyCode_Addr2Line per instruction, -1 for none
	CoLines     []int32 `json:"co_lines,omitempty"` // co_lines() per instruction (3.10+), -1 for none
}

// checkDump decodes every table in d with layout l's decoder and compares
// the line of every instruction with the interpreter's.
func checkDump(t *testing.T, l *Layout, d *lineDump) {
	t.Helper()
	if len(d.Codes) < 10 {
		t.Fatalf("only %d code objects in the dump", len(d.Codes))
	}
	for _, c := range d.Codes {
		raw, err := hex.DecodeString(c.Table)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		lt := decodeLines(l.Kind, raw, c.FirstLineNo)
		for _, want := range [][]int32{c.Addr2Line, c.CoLines} {
			if want == nil {
				continue
			}
			if len(want) != c.CodeBytes/2 {
				t.Fatalf("%s: %d lines for %d bytes of code", c.Name, len(want), c.CodeBytes)
			}
			for i, w := range want {
				if got := lt.line(uint32(2 * i)); got != w {
					t.Fatalf("CPython %s %s: offset %d: line %d, interpreter says %d (table %s)",
						d.Version, c.Name, 2*i, got, w, c.Table)
				}
			}
		}
	}
}

func readDump(t *testing.T, b []byte) *lineDump {
	t.Helper()
	var d lineDump
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func goldenPath(minor int) string {
	return filepath.Join("testdata", "lines", fmt.Sprintf("3.%d.json", minor))
}

// TestLineTablesGolden runs without any interpreter: every supported
// version's committed dump must decode to the interpreter's lines.
func TestLineTablesGolden(t *testing.T) {
	for _, l := range layouts {
		t.Run(fmt.Sprintf("3.%d", l.Minor), func(t *testing.T) {
			b, err := os.ReadFile(goldenPath(l.Minor))
			if err != nil {
				t.Fatalf("%v (regenerate with go test -run TestLineTablesLive -update)", err)
			}
			d := readDump(t, b)
			if !strings.HasPrefix(d.Version, fmt.Sprintf("3.%d.", l.Minor)) {
				t.Fatalf("golden file of version %s", d.Version)
			}
			checkDump(t, l, d)
		})
	}
}

// TestLineTablesLive has each installed interpreter compile the test source
// and compares the decoders with its own answers; -update rewrites the
// golden files from the pyenv ones.
func TestLineTablesLive(t *testing.T) {
	ins := interpreters()
	if len(ins) == 0 {
		t.Skip("no CPython 3.9 to 3.13 installed (pyenv or " + debianPython + ")")
	}
	for _, in := range ins {
		t.Run(in.name, func(t *testing.T) {
			out, err := exec.Command(in.exe, "testdata/lines.py").Output()
			if err != nil {
				t.Fatalf("%s: %v", in.exe, err)
			}
			l, err := LayoutFor(Version{Major: 3, Minor: in.minor})
			if err != nil {
				t.Fatal(err)
			}
			checkDump(t, l, readDump(t, out))
			if *update && in.pyenv {
				if err := os.WriteFile(goldenPath(in.minor), out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// Hand-made tables for the edges the interpreters' own tables may not show.
func TestLineTableEdges(t *testing.T) {
	type probe struct {
		off  uint32
		want int32
	}
	for _, tc := range []struct {
		name   string
		kind   FrameKind
		table  []byte
		first  int32
		probes []probe
	}{
		{"3.9 empty", FrameObject39, nil, 7, []probe{{0, 7}, {1000, 7}}},
		{"3.9 odd byte ignored", FrameObject39, []byte{4, 1, 9}, 7, []probe{{3, 7}, {4, 8}, {1 << 20, 8}}},
		// Two pairs at one address: both deltas apply from there on.
		{"3.9 same address", FrameObject39, []byte{6, 0, 0, 0xfe, 2, 5}, 10, []probe{{5, 10}, {6, 8}, {8, 13}}},
		{"3.10 empty", FrameObject310, nil, 7, []probe{{0, noLine}}},
		// A no-line range does not move the running line; zero-length
		// ranges still do.
		{"3.10 no line", FrameObject310, []byte{4, 1, 2, 0x80, 0, 3, 2, 0}, 10, []probe{
			{0, 11}, {3, 11}, {4, noLine}, {6, 14}, {7, 14}, {8, noLine}, {1000, noLine}}},
		{"3.11 empty", Interp311, nil, 7, []probe{{0, noLine}}},
		{"3.11 forms", Interp313, []byte{
			locEntry(locNoColumns, 2), 0x02, // line +1
			locEntry(locOneLine0, 1), 4, 9, // same line, two column bytes
			locEntry(locNone, 1),
			locEntry(0, 2), 5, // short form: same line, one column byte
			locEntry(locLong, 1), 0x43, 0x01, 0, 3, 4, // line delta -(3 | 1<<6)>>1 = -33, end line, columns
			locEntry(locOneLine0+2, 3), 1, 2, // line +2
		}, 100, []probe{
			{0, 101}, {3, 101}, {4, 101}, {6, noLine}, {8, 101}, {11, 101},
			{12, 68}, {14, 70}, {19, 70}, {20, noLine}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lt := decodeLines(tc.kind, tc.table, tc.first)
			for _, p := range tc.probes {
				if got := lt.line(p.off); got != p.want {
					t.Errorf("offset %d: line %d, want %d", p.off, got, p.want)
				}
			}
		})
	}
}

// locEntry is the first byte of a location table entry covering units code
// units.
func locEntry(code, units int) byte {
	return byte(0x80 | code<<3 | (units - 1))
}

func TestVarint(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		u    uint64
		want int64
	}{
		{[]byte{0}, 0, 0},
		{[]byte{2}, 2, 1},
		{[]byte{3}, 3, -1},
		{[]byte{0x40 | 1, 1}, 1 | 1<<6, -32},
		{[]byte{0x40, 0x40, 0x02}, 2 << 12, 1 << 12},
		{[]byte{0x41}, 1, -0}, // continuation past the end of the entry
	} {
		if got := varint(tc.in); got != tc.u {
			t.Errorf("varint(%x) = %d, want %d", tc.in, got, tc.u)
		}
		if got := svarint(tc.in); got != tc.want {
			t.Errorf("svarint(%x) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestCodeLine(t *testing.T) {
	c := &codeObject{firstLine: 42, lines: decodeLines(FrameObject310, []byte{4, 1, 2, 0x80}, 42)}
	for off, want := range map[uint32]int{UnknownOffset: 42, 0: 43, 4: 42, 100: 42} { // no line: the first
		if got := c.line(off); got != want {
			t.Errorf("offset %d: line %d, want %d", off, got, want)
		}
	}
	neg := &codeObject{firstLine: -5}
	if got := neg.line(UnknownOffset); got != 0 {
		t.Errorf("negative first line gave %d, want 0 (unknown)", got)
	}
}
