package latency

import (
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

// histtest is a small object with two programs, each with its own map.
const histtest = "../../histmap/internal/histtest/histtest_bpfel.o"

type (
	testMaps struct {
		Hist *ebpf.Map `ebpf:"hist_test"`
	}
	testProgs struct {
		Feed *ebpf.Program `ebpf:"feed"`
	}
	nested struct {
		testProgs
		Hash *ebpf.Map `ebpf:"hist_test_hash"`
	}
	wrong struct {
		Feed  *ebpf.Program `ebpf:"feed"`
		Nope  *ebpf.Program `ebpf:"nope"`
		Count int           `ebpf:"hist_test"`
	}
)

func TestCheckSpec(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpec(histtest)
	if err != nil {
		t.Fatal(err)
	}
	for _, objs := range []any{new(testMaps), new(testProgs), new(nested)} {
		if err := CheckSpec(spec, objs); err != nil {
			t.Errorf("%T: %v", objs, err)
		}
	}
	err = CheckSpec(spec, new(wrong))
	if err == nil || !strings.Contains(err.Error(), "program nope") || !strings.Contains(err.Error(), "hist_test has type int") {
		t.Fatalf("CheckSpec of a wrong struct: %v, want errors naming nope and hist_test", err)
	}
}

// Embedded structs are walked in declaration order, as LoadAndAssign does.
func TestFieldsWalkEmbeddedStructs(t *testing.T) {
	var got []string
	for _, f := range fields(new(nested)) {
		got = append(got, f.name)
	}
	if strings.Join(got, ",") != "feed,hist_test_hash" {
		t.Fatalf("fields %v", got)
	}
	if ps := Programs(new(nested)); len(ps) != 1 || ps[0].Name != "feed" {
		t.Fatalf("programs %v", ps)
	}
}

func TestZeroBase(t *testing.T) {
	var b Base
	if b.Report().Hook != "" || len(b.Reports()) != 0 || len(b.Stats()) != 0 || !b.StartTime().IsZero() || b.Attached("x") {
		t.Fatal("a zero Base reports something")
	}
	if err := b.Close(); err != nil || !b.Closed() {
		t.Fatalf("Close of a zero Base: %v", err)
	}
	if err := Unload(new(testProgs)); err != nil {
		t.Fatalf("Unload of nothing loaded: %v", err)
	}
}

// Only what the struct names is loaded; the shared map is the one every
// later load writes.
func TestLoadUsesTheSharedMaps(t *testing.T) {
	testenv.RequireRoot(t)
	spec, err := ebpf.LoadCollectionSpec(histtest)
	if err != nil {
		t.Fatal(err)
	}
	var b Base
	defer b.Close()
	var maps testMaps
	if err := b.LoadShared(spec, &maps); err != nil {
		t.Fatal(err)
	}
	progs := new(testProgs)
	if err := b.Load(spec, progs); err != nil {
		t.Fatal(err)
	}
	b.Keep("test", nil, progs)
	info, err := progs.Feed.Info()
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := info.MapIDs()
	shared, err := maps.Hist.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := shared.ID()
	if len(ids) == 0 || !containsID(ids, id) {
		t.Fatalf("feed uses maps %v, not the shared map %d", ids, id)
	}
	if !b.Attached("test") || time.Since(b.StartTime()) > time.Minute {
		t.Fatalf("kept point not recorded: start %v", b.StartTime())
	}
	if st := b.Stats(); len(st) != 1 || st[0].Hook != "test" || st[0].Program != "feed" {
		t.Fatalf("stats %+v", st)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if progs.Feed != nil || !b.Closed() {
		t.Fatal("Close left the program loaded")
	}
}

func containsID(ids []ebpf.MapID, id ebpf.MapID) bool {
	for _, i := range ids {
		if i == id {
			return true
		}
	}
	return false
}
