package profilesink

import (
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
)

const scopeName = "github.com/vigil-ebpf/vigil"

// sampleAttrKeys name pprof's sample labels as the semantic conventions
// do; other labels keep their pprof names.
var sampleAttrKeys = map[string]string{"pid": "process.pid", "tid": "thread.id", "comm": "thread.name"}

// toOTLP converts a batch to one OTLP profiles request: one ResourceProfiles
// per process group, and, because an OTLP profile carries a single sample
// type, one profile per pprof sample type (samples/count, cpu/nanoseconds)
// sharing stacks through the dictionary.
func toOTLP(batch []Profile) (pprofile.Profiles, error) {
	out := pprofile.NewProfiles()
	dict := newDictionary(out.Dictionary())
	for i := range batch {
		p := &batch[i]
		if p.Pprof == nil {
			return out, fmt.Errorf("profile of %q has no pprof", p.Service)
		}
		rp := out.ResourceProfiles().AppendEmpty()
		setResource(rp.Resource().Attributes(), p)
		sp := rp.ScopeProfiles().AppendEmpty()
		sp.Scope().SetName(scopeName)
		samples := dict.samples(p.Pprof)
		for t := range p.Pprof.SampleType {
			convertProfile(dict, p, t, samples, sp.Profiles().AppendEmpty())
		}
	}
	return out, nil
}

// sampleRefs are a pprof sample's stack and attributes in the dictionary,
// looked up once for all its sample types.
type sampleRefs struct {
	stack int32
	attrs []int32
}

func (x *dictionary) samples(src *profile.Profile) []sampleRefs {
	x.locCache = make(map[*profile.Location]int32, len(src.Location))
	out := make([]sampleRefs, len(src.Sample))
	for i, s := range src.Sample {
		out[i] = sampleRefs{stack: x.stack(s.Location), attrs: sampleAttrs(x, s)}
	}
	x.locCache = nil
	return out
}

func convertProfile(dict *dictionary, p *Profile, t int, refs []sampleRefs, op pprofile.Profile) {
	src := p.Pprof
	st := src.SampleType[t]
	op.SampleType().SetTypeStrindex(dict.str(st.Type))
	op.SampleType().SetUnitStrindex(dict.str(st.Unit))
	if src.PeriodType != nil {
		op.PeriodType().SetTypeStrindex(dict.str(src.PeriodType.Type))
		op.PeriodType().SetUnitStrindex(dict.str(src.PeriodType.Unit))
	}
	op.SetPeriod(src.Period)
	start, dur := timeSpan(p)
	op.SetTime(pcommon.NewTimestampFromTime(start))
	op.SetDurationNano(uint64(max(dur, 0)))
	op.SetProfileID(newProfileID())
	op.Samples().EnsureCapacity(len(src.Sample))
	for i, s := range src.Sample {
		os := op.Samples().AppendEmpty()
		os.SetStackIndex(refs[i].stack)
		os.Values().Append(s.Value[t])
		os.AttributeIndices().FromRaw(refs[i].attrs)
	}
}

// timeSpan prefers the interval the agent reports and falls back to the
// pprof's own.
func timeSpan(p *Profile) (time.Time, int64) {
	if !p.Start.IsZero() && !p.End.IsZero() {
		return p.Start, p.End.Sub(p.Start).Nanoseconds()
	}
	return time.Unix(0, p.Pprof.TimeNanos), p.Pprof.DurationNanos
}

func sampleAttrs(dict *dictionary, s *profile.Sample) []int32 {
	var idx []int32
	for _, k := range slices.Sorted(maps.Keys(s.Label)) {
		for _, v := range s.Label[k] {
			idx = append(idx, dict.strAttr(attrName(k), v))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.NumLabel)) {
		for j, v := range s.NumLabel[k] {
			unit := ""
			if units := s.NumUnit[k]; j < len(units) {
				unit = units[j]
			}
			idx = append(idx, dict.numAttr(attrName(k), v, unit))
		}
	}
	return idx
}

func attrName(label string) string {
	if n, ok := sampleAttrKeys[label]; ok {
		return n
	}
	return label
}

func newProfileID() pprofile.ProfileID {
	var id pprofile.ProfileID
	_, _ = rand.Read(id[:]) // never fails on Linux
	return id
}
