package tcplat

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

// fieldWant is where the BPF side expects a tracepoint field.
type fieldWant struct {
	name         string
	offset, size uint32
}

// setStateLayout is struct inet_sock_set_state_args in tcplat.bpf.c: the
// program reads the record directly, which is cheaper than copying fields,
// so the kernel's layout must be this one (it is from 4.16 on).
var setStateLayout = []fieldWant{
	{"skaddr", 8, 8}, {"oldstate", 16, 4}, {"newstate", 20, 4},
	{"sport", 24, 2}, {"dport", 26, 2}, {"family", 28, 2}, {"protocol", 30, 2},
}

func checkSetStateLayout(_ *ebpf.CollectionSpec, f *tracefs.Format) error {
	return checkLayout(f, setStateLayout)
}

func checkLayout(f *tracefs.Format, want []fieldWant) error {
	for _, w := range want {
		got, err := f.Field(w.name)
		if err != nil {
			return err
		}
		if got.Offset != w.offset || got.Size != w.size {
			return fmt.Errorf("field %s at offset %d size %d, the program expects offset %d size %d",
				w.name, got.Offset, got.Size, w.offset, w.size)
		}
	}
	return nil
}

// setProbeOffsets points rtt_tp at tcp_probe's fields, which moved as the
// record gained mark, family and socket address fields. Records without
// family (before 5.x) leave probe_family_off at 0, which the program takes
// as "no family check".
func setProbeOffsets(spec *ebpf.CollectionSpec, f *tracefs.Format) error {
	return setOffsets(spec, f, map[string]fieldVar{
		"family": {"probe_family_off", 2, true}, "sport": {"probe_sport_off", 2, false},
		"dport": {"probe_dport_off", 2, false}, "srtt": {"probe_srtt_off", 4, false},
	})
}

func setRetransmitOffsets(spec *ebpf.CollectionSpec, f *tracefs.Format) error {
	return setOffsets(spec, f, map[string]fieldVar{
		"sport": {"retrans_sport_off", 2, false}, "dport": {"retrans_dport_off", 2, false},
	})
}

type fieldVar struct {
	variable string
	size     uint32
	optional bool // absent from older records: the variable stays 0
}

func setOffsets(spec *ebpf.CollectionSpec, f *tracefs.Format, fields map[string]fieldVar) error {
	for name, fv := range fields {
		got, err := f.Field(name)
		if err != nil && fv.optional {
			continue
		}
		if err != nil {
			return err
		}
		if got.Size != fv.size {
			return fmt.Errorf("field %s has size %d, the program reads %d bytes", name, got.Size, fv.size)
		}
		if err := spec.Variables[fv.variable].Set(got.Offset); err != nil {
			return fmt.Errorf("setting %s: %w", fv.variable, err)
		}
	}
	return nil
}
