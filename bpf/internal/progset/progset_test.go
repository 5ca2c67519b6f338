package progset

import (
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

func testSpec() *ebpf.CollectionSpec {
	prog := func(refs ...string) *ebpf.ProgramSpec {
		var insns asm.Instructions
		for _, r := range refs {
			insns = append(insns, asm.LoadMapPtr(asm.R1, 0).WithReference(r))
		}
		insns = append(insns, asm.Call.Label("helper"), asm.Mov.Imm(asm.R0, 0), asm.Return())
		return &ebpf.ProgramSpec{Type: ebpf.TracePoint, Instructions: insns, License: "GPL"}
	}
	m := &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{"shared": m, "own": m.Copy(), ".rodata": m.Copy()},
		Programs: map[string]*ebpf.ProgramSpec{
			"a": prog("shared", "own", "shared", ".rodata"),
			"b": prog(),
		},
	}
}

// Only maps are map references: calls to other functions are not, and each
// map is listed once.
func TestMapRefs(t *testing.T) {
	spec := testSpec()
	got := mapRefs(spec, spec.Programs["a"])
	if !slices.Equal(got, []string{"shared", "own", ".rodata"}) {
		t.Fatalf("refs of a = %v", got)
	}
	if got := mapRefs(spec, spec.Programs["b"]); len(got) != 0 {
		t.Fatalf("refs of b = %v", got)
	}
}

func TestLoadUnknownProgram(t *testing.T) {
	_, err := Load(testSpec(), []Prog{{Name: "nope", Kind: Tracepoint, Target: "x:y"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("Load of a missing program: %v, want an error naming it", err)
	}
}

func TestAttachBadTarget(t *testing.T) {
	if _, err := attachOne(Prog{Name: "a", Kind: Tracepoint, Target: "no-colon"}, nil); err == nil || !strings.Contains(err.Error(), "no-colon") {
		t.Fatalf("tracepoint target without group: %v", err)
	}
	if _, err := attachOne(Prog{Name: "a", Kind: Kind(42)}, nil); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

func TestCloseNil(t *testing.T) {
	var s *Set
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
