package biolat

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/latency"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

func TestSpecMatchesGeneratedTypes(t *testing.T) {
	spec, err := loadBiolat()
	if err != nil {
		t.Fatal(err)
	}
	valueSize := uint32(binary.Size(biolatHistValue{}))
	if valueSize != uint32(binary.Size(histmap.Value{})) {
		t.Fatalf("hist_value is %d bytes, histmap.Value %d", valueSize, binary.Size(histmap.Value{}))
	}
	for name, want := range map[string]ebpf.MapSpec{
		"block_hists":  {Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: valueSize, MaxEntries: uint32(len(directions))},
		"rq_start":     {Type: ebpf.LRUHash, KeySize: 8, ValueSize: 8, MaxEntries: 16384},
		"sector_start": {Type: ebpf.LRUHash, KeySize: uint32(binary.Size(biolatDevSector{})), ValueSize: 8, MaxEntries: 16384},
	} {
		m := spec.Maps[name]
		if m == nil {
			t.Errorf("map %s missing", name)
			continue
		}
		if m.Type != want.Type || m.KeySize != want.KeySize || m.ValueSize != want.ValueSize || m.MaxEntries != want.MaxEntries {
			t.Errorf("map %s: %v key %d value %d entries %d, want %v %d %d %d", name,
				m.Type, m.KeySize, m.ValueSize, m.MaxEntries, want.Type, want.KeySize, want.ValueSize, want.MaxEntries)
		}
	}
	if binary.Size(biolatDevSector{}) != 16 {
		t.Errorf("dev_sector key is %d bytes, want 16", binary.Size(biolatDevSector{}))
	}
	for name, want := range map[string]ebpf.ProgramType{
		"issue_btf": ebpf.Tracing, "issue_btf_q": ebpf.Tracing, "complete_btf": ebpf.Tracing,
		"issue_tp": ebpf.TracePoint, "complete_tp": ebpf.TracePoint,
	} {
		if ps := spec.Programs[name]; ps == nil || ps.Type != want {
			t.Errorf("program %s: %v, want type %v", name, ps, want)
		}
	}
	for _, objs := range []any{new(blockMaps), new(btfProgs), new(btfQueueProgs), new(tpProgs)} {
		if err := latency.CheckSpec(spec, objs); err != nil {
			t.Errorf("%T: %v", objs, err)
		}
	}
}

func parseFormat(t *testing.T, text string) *tracefs.Format {
	t.Helper()
	f, err := tracefs.ParseFormat(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func rwbsOffset(t *testing.T, spec *ebpf.CollectionSpec, prefix string) uint32 {
	t.Helper()
	var off uint32
	if err := spec.Variables[prefix+"_rwbs_off"].Get(&off); err != nil {
		t.Fatal(err)
	}
	return off
}

// rwbs's offset comes from the format file: this kernel's layout and the one
// before ioprio was added put it in different places. dev and sector must be
// where the program reads them in place.
func TestTracepointOffsets(t *testing.T) {
	spec, err := loadBiolat()
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile("../internal/tracefs/testdata/block_rq_issue-6.18.format")
	if err != nil {
		t.Fatal(err)
	}
	if err := setOffsets(spec, parseFormat(t, string(cur)), "issue"); err != nil {
		t.Fatal(err)
	}
	if got := rwbsOffset(t, spec, "issue"); got != 34 {
		t.Errorf("6.18 block_rq_issue rwbs at %d, want 34", got)
	}
	const old = "\tfield:dev_t dev;\toffset:8;\tsize:4;\tsigned:0;\n" +
		"\tfield:sector_t sector;\toffset:16;\tsize:8;\tsigned:0;\n" +
		"\tfield:unsigned int nr_sector;\toffset:24;\tsize:4;\tsigned:0;\n" +
		"\tfield:int errors;\toffset:28;\tsize:4;\tsigned:1;\n" +
		"\tfield:char rwbs[8];\toffset:32;\tsize:8;\tsigned:1;\n"
	if err := setOffsets(spec, parseFormat(t, old), "complete"); err != nil {
		t.Fatal(err)
	}
	if got := rwbsOffset(t, spec, "complete"); got != 32 {
		t.Errorf("older block_rq_complete rwbs at %d, want 32", got)
	}
	bad := strings.Replace(old, "size:8;\tsigned:0", "size:4;\tsigned:0", 1) // a 32-bit sector
	if err := setOffsets(spec, parseFormat(t, bad), "complete"); err == nil || !strings.Contains(err.Error(), "sector") {
		t.Errorf("4-byte sector: %v, want an error naming the field", err)
	}
	moved := strings.Replace(old, "offset:8;", "offset:12;", 1)
	if err := setOffsets(spec, parseFormat(t, moved), "issue"); err == nil || !strings.Contains(err.Error(), "dev") {
		t.Errorf("moved dev: %v, want an error naming the field", err)
	}
}

// fakeKernel builds BTF holding btf_trace_<tp> typedefs with the given
// arguments, as the kernel declares its raw tracepoints.
func fakeKernel(t *testing.T, protos map[string][]btf.Type) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for tp, args := range protos {
		params := []btf.FuncParam{{Name: "__data", Type: &btf.Pointer{Target: &btf.Void{}}}}
		for _, a := range args {
			params = append(params, btf.FuncParam{Name: "arg", Type: a})
		}
		td := &btf.Typedef{Name: "btf_trace_" + tp, Type: &btf.Pointer{Target: &btf.FuncProto{Return: &btf.Void{}, Params: params}}}
		if _, err := b.Add(td); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestRequestArg(t *testing.T) {
	rq := &btf.Pointer{Target: &btf.Struct{Name: "request"}}
	q := &btf.Pointer{Target: &btf.Struct{Name: "request_queue"}}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	k := fakeKernel(t, map[string][]btf.Type{
		"block_rq_issue":    {q, rq}, // before 5.11
		"block_rq_complete": {rq, u32, u32},
		"block_rq_insert":   {q, u32},
	})
	for tp, want := range map[string]int{"block_rq_issue": 1, "block_rq_complete": 0} {
		if got, err := requestArg(k, tp); err != nil || got != want {
			t.Errorf("%s: argument %d (%v), want %d", tp, got, err, want)
		}
	}
	if _, err := requestArg(k, "block_rq_insert"); err == nil {
		t.Error("tracepoint without a request argument accepted")
	}
	if _, err := requestArg(k, "block_bio_queue"); err == nil || !strings.Contains(err.Error(), "block_bio_queue") {
		t.Errorf("missing tracepoint: %v", err)
	}
}

// This kernel's own tracepoints, when its BTF is readable.
func TestRequestArgRunningKernel(t *testing.T) {
	k, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("skipped: no kernel BTF: %v", err)
	}
	if i, err := requestArg(k, "block_rq_issue"); err != nil || i > 1 {
		t.Errorf("block_rq_issue: argument %d (%v)", i, err)
	}
	if i, err := requestArg(k, "block_rq_complete"); err != nil || i != 0 {
		t.Errorf("block_rq_complete: argument %d (%v)", i, err)
	}
}

func TestBadScaleIsRefused(t *testing.T) {
	for _, scale := range []int32{-1, 5, 20} {
		_, err := Open(Options{Scale: scale})
		if err == nil || !strings.Contains(err.Error(), "scale") {
			t.Errorf("scale %d: %v, want an error naming the scale", scale, err)
		}
	}
}
