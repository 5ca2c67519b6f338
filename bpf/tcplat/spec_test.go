package tcplat

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/histmap"
	"github.com/vigil-ebpf/vigil/bpf/internal/latency"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

func TestSpecMatchesGeneratedTypes(t *testing.T) {
	spec, err := loadTcplat()
	if err != nil {
		t.Fatal(err)
	}
	valueSize := uint32(binary.Size(tcplatHistValue{}))
	if valueSize != uint32(binary.Size(histmap.Value{})) {
		t.Fatalf("hist_value is %d bytes, histmap.Value %d", valueSize, binary.Size(histmap.Value{}))
	}
	for name, want := range map[string]ebpf.MapSpec{
		"tcp_hists":     {Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: valueSize, MaxEntries: histRTT + 1},
		"tcp_counters":  {Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: cntConnectFailed + 1},
		"connect_start": {Type: ebpf.LRUHash, KeySize: 8, ValueSize: 8, MaxEntries: 16384},
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
}

// Every strategy's struct names programs that exist with the program type
// its attach function needs, and together they use every program.
func TestStrategiesMatchPrograms(t *testing.T) {
	spec, err := loadTcplat()
	if err != nil {
		t.Fatal(err)
	}
	if err := latency.CheckSpec(spec, new(tcpMaps)); err != nil {
		t.Error(err)
	}
	n := 0
	for objs, want := range map[any]ebpf.ProgramType{
		new(connectFentryProgs): ebpf.Tracing, new(connectV6FentryProgs): ebpf.Tracing, new(rttFentryProgs): ebpf.Tracing,
		new(connectKprobeProgs): ebpf.Kprobe, new(connectV6KprobeProgs): ebpf.Kprobe, new(rttKprobeProgs): ebpf.Kprobe,
		new(setStateTPProgs): ebpf.TracePoint, new(rttTPProgs): ebpf.TracePoint, new(retransmitTPProgs): ebpf.TracePoint,
	} {
		if err := latency.CheckSpec(spec, objs); err != nil {
			t.Errorf("%T: %v", objs, err)
			continue
		}
		for _, p := range latency.Programs(objs) {
			ps := spec.Programs[p.Name]
			if ps.Type != want {
				t.Errorf("%T: program %s has type %v, want %v", objs, p.Name, ps.Type, want)
			}
			if want == ebpf.Tracing && ps.AttachType != ebpf.AttachTraceFEntry {
				t.Errorf("program %s: attach type %v", p.Name, ps.AttachType)
			}
			n++
		}
	}
	if n != len(spec.Programs) {
		t.Errorf("strategies use %d programs, the object has %d", n, len(spec.Programs))
	}
}

func format(t *testing.T, name string) *tracefs.Format {
	t.Helper()
	f, err := os.Open("../internal/tracefs/testdata/" + name + ".format")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fm, err := tracefs.ParseFormat(f)
	if err != nil {
		t.Fatal(err)
	}
	return fm
}

func TestTracepointLayouts(t *testing.T) {
	spec, err := loadTcplat()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSetStateLayout(spec, format(t, "inet_sock_set_state-6.18")); err != nil {
		t.Errorf("6.18 inet_sock_set_state refused: %v", err)
	}
	if err := setProbeOffsets(spec, format(t, "tcp_probe-6.18")); err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]uint32{"probe_family_off": 68, "probe_sport_off": 64, "probe_dport_off": 66, "probe_srtt_off": 100} {
		var got uint32
		if err := spec.Variables[v].Get(&got); err != nil || got != want {
			t.Errorf("%s = %d (%v), want %d", v, got, err, want)
		}
	}
}

// A record whose fields moved is refused with the field named, not read at
// the wrong place.
func TestMovedSetStateFieldIsRefused(t *testing.T) {
	const moved = "name: inet_sock_set_state\n" +
		"\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;\n" +
		"\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;\n" +
		"\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;\n" +
		"\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;\n" +
		"\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;\n" +
		"\tfield:__u16 family;\toffset:30;\tsize:2;\tsigned:0;\n"
	fm, err := tracefs.ParseFormat(strings.NewReader(moved))
	if err != nil {
		t.Fatal(err)
	}
	err = checkSetStateLayout(nil, fm)
	if err == nil || !strings.Contains(err.Error(), "family") {
		t.Fatalf("moved family field: %v, want an error naming it", err)
	}
	fm.Fields = fm.Fields[:5]
	if err := checkSetStateLayout(nil, fm); err == nil || !strings.Contains(err.Error(), "family") {
		t.Fatalf("missing family field: %v", err)
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

// tcp_probe records from before family was added still load: the family
// check is left out (0), the other offsets are set.
func TestProbeWithoutFamily(t *testing.T) {
	spec, err := loadTcplat()
	if err != nil {
		t.Fatal(err)
	}
	const old = "\tfield:__u16 sport;\toffset:64;\tsize:2;\tsigned:0;\n" +
		"\tfield:__u16 dport;\toffset:66;\tsize:2;\tsigned:0;\n" +
		"\tfield:__u32 mark;\toffset:68;\tsize:4;\tsigned:0;\n" +
		"\tfield:__u32 srtt;\toffset:96;\tsize:4;\tsigned:0;\n"
	fm, err := tracefs.ParseFormat(strings.NewReader(old))
	if err != nil {
		t.Fatal(err)
	}
	if err := setProbeOffsets(spec, fm); err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]uint32{"probe_family_off": 0, "probe_srtt_off": 96, "probe_sport_off": 64} {
		var got uint32
		if err := spec.Variables[v].Get(&got); err != nil || got != want {
			t.Errorf("%s = %d (%v), want %d", v, got, err, want)
		}
	}
	fm.Fields = fm.Fields[:3] // no srtt: nothing to measure
	if err := setProbeOffsets(spec, fm); err == nil || !strings.Contains(err.Error(), "srtt") {
		t.Errorf("format without srtt: %v", err)
	}
}
