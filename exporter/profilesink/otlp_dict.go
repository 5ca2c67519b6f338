package profilesink

import (
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
)

// dictionary fills the one lookup table an OTLP profiles request shares
// between all its profiles, deduplicating by content so that the same
// binary, function or stack in many process groups is sent once. Every
// table starts with its zero value, as the format requires, so index 0
// means "none".
type dictionary struct {
	d         pprofile.ProfilesDictionary
	strings   map[string]int32
	mappings  map[mappingKey]int32
	functions map[functionKey]int32
	locations map[string]int32
	stacks    map[string]int32
	attrs     map[attrKey]int32
	key       strings.Builder // scratch for location and stack keys
	// locCache maps the current pprof's own locations, each converted
	// once however many stacks share it.
	locCache map[*profile.Location]int32
}

type mappingKey struct {
	start, limit, offset uint64
	file, buildID        string
}

type functionKey struct {
	name, system, file string
	start              int64
}

type attrKey struct {
	key, unit string
	str       string
	num       int64
	isNum     bool
}

func newDictionary(d pprofile.ProfilesDictionary) *dictionary {
	x := &dictionary{
		d: d, strings: map[string]int32{}, mappings: map[mappingKey]int32{},
		functions: map[functionKey]int32{}, locations: map[string]int32{},
		stacks: map[string]int32{}, attrs: map[attrKey]int32{},
	}
	x.str("")
	d.MappingTable().AppendEmpty()
	d.FunctionTable().AppendEmpty()
	d.LocationTable().AppendEmpty()
	d.StackTable().AppendEmpty()
	d.AttributeTable().AppendEmpty()
	d.LinkTable().AppendEmpty()
	return x
}

func (x *dictionary) str(s string) int32 {
	if i, ok := x.strings[s]; ok {
		return i
	}
	i := int32(x.d.StringTable().Len())
	x.d.StringTable().Append(s)
	x.strings[s] = i
	return i
}

func (x *dictionary) strAttr(key, val string) int32 {
	return x.attr(attrKey{key: key, str: val})
}

func (x *dictionary) numAttr(key string, val int64, unit string) int32 {
	return x.attr(attrKey{key: key, num: val, isNum: true, unit: unit})
}

func (x *dictionary) attr(k attrKey) int32 {
	if i, ok := x.attrs[k]; ok {
		return i
	}
	i := int32(x.d.AttributeTable().Len())
	a := x.d.AttributeTable().AppendEmpty()
	a.SetKeyStrindex(x.str(k.key))
	if k.unit != "" {
		a.SetUnitStrindex(x.str(k.unit))
	}
	if k.isNum {
		a.Value().SetInt(k.num)
	} else {
		a.Value().SetStr(k.str)
	}
	x.attrs[k] = i
	return i
}

func (x *dictionary) mapping(m *profile.Mapping) int32 {
	if m == nil {
		return 0
	}
	k := mappingKey{m.Start, m.Limit, m.Offset, m.File, m.BuildID}
	if i, ok := x.mappings[k]; ok {
		return i
	}
	i := int32(x.d.MappingTable().Len())
	om := x.d.MappingTable().AppendEmpty()
	om.SetMemoryStart(m.Start)
	om.SetMemoryLimit(m.Limit)
	om.SetFileOffset(m.Offset)
	om.SetFilenameStrindex(x.str(m.File))
	if m.BuildID != "" {
		// The profiler reads GNU build IDs (hex) from ELF notes.
		om.AttributeIndices().Append(x.strAttr("process.executable.build_id.gnu", m.BuildID))
	}
	x.mappings[k] = i
	return i
}

func (x *dictionary) function(f *profile.Function) int32 {
	if f == nil {
		return 0
	}
	k := functionKey{f.Name, f.SystemName, f.Filename, f.StartLine}
	if i, ok := x.functions[k]; ok {
		return i
	}
	i := int32(x.d.FunctionTable().Len())
	of := x.d.FunctionTable().AppendEmpty()
	of.SetNameStrindex(x.str(f.Name))
	of.SetSystemNameStrindex(x.str(f.SystemName))
	of.SetFilenameStrindex(x.str(f.Filename))
	of.SetStartLine(f.StartLine)
	x.functions[k] = i
	return i
}

func (x *dictionary) location(l *profile.Location) int32 {
	if i, ok := x.locCache[l]; ok {
		return i
	}
	i := x.locationByContent(l)
	if x.locCache != nil {
		x.locCache[l] = i
	}
	return i
}

func (x *dictionary) locationByContent(l *profile.Location) int32 {
	mi := x.mapping(l.Mapping)
	lines := make([]int32, len(l.Line))
	x.key.Reset()
	x.key.WriteString(strconv.FormatInt(int64(mi), 36))
	x.key.WriteByte(':')
	x.key.WriteString(strconv.FormatUint(l.Address, 36))
	for j, ln := range l.Line {
		lines[j] = x.function(ln.Function)
		x.key.WriteByte(';')
		x.key.WriteString(strconv.FormatInt(int64(lines[j]), 36))
		x.key.WriteByte(',')
		x.key.WriteString(strconv.FormatInt(ln.Line, 36))
		x.key.WriteByte(',')
		x.key.WriteString(strconv.FormatInt(ln.Column, 36))
	}
	k := x.key.String()
	if i, ok := x.locations[k]; ok {
		return i
	}
	i := int32(x.d.LocationTable().Len())
	ol := x.d.LocationTable().AppendEmpty()
	ol.SetMappingIndex(mi)
	ol.SetAddress(l.Address)
	for j, ln := range l.Line {
		ol2 := ol.Lines().AppendEmpty()
		ol2.SetFunctionIndex(lines[j])
		ol2.SetLine(ln.Line)
		ol2.SetColumn(ln.Column)
	}
	x.locations[k] = i
	return i
}

// stack keeps pprof's order: the leaf first.
func (x *dictionary) stack(locs []*profile.Location) int32 {
	idx := make([]int32, len(locs))
	for j, l := range locs {
		idx[j] = x.location(l)
	}
	x.key.Reset()
	for _, i := range idx {
		x.key.WriteString(strconv.FormatInt(int64(i), 36))
		x.key.WriteByte(',')
	}
	k := x.key.String()
	if i, ok := x.stacks[k]; ok {
		return i
	}
	i := int32(x.d.StackTable().Len())
	x.d.StackTable().AppendEmpty().LocationIndices().FromRaw(idx)
	x.stacks[k] = i
	return i
}

// setResource writes the group's attributes and service.name; process.pid
// is an integer in the semantic conventions.
func setResource(m pcommon.Map, p *Profile) {
	m.EnsureCapacity(len(p.Attrs) + 1)
	for k, v := range p.Attrs {
		if k == "process.pid" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				m.PutInt(k, n)
				continue
			}
		}
		m.PutStr(k, v)
	}
	m.PutStr("service.name", serviceName(p))
}

// serviceName is the group's service, or OpenTelemetry's default for a
// service without a name (Pyroscope refuses series without one).
func serviceName(p *Profile) string {
	if p.Service == "" {
		return "unknown_service"
	}
	return p.Service
}
