package latency

import (
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/cilium/ebpf"
)

// field is one ebpf-tagged field of an objects struct.
type field struct {
	name  string // the tag: the object's name in the spec
	value reflect.Value
}

// fields lists the ebpf-tagged fields of the struct objs points to, walking
// untagged struct fields as LoadAndAssign does, in declaration order.
func fields(objs any) []field {
	v := reflect.ValueOf(objs)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("latency: %T is not a pointer to a struct", objs))
	}
	return structFields(v.Elem(), nil)
}

func structFields(v reflect.Value, out []field) []field {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if name := f.Tag.Get("ebpf"); name != "" {
			out = append(out, field{name, v.Field(i)})
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			out = structFields(v.Field(i), out)
		}
	}
	return out
}

var (
	programType = reflect.TypeFor[*ebpf.Program]()
	mapType     = reflect.TypeFor[*ebpf.Map]()
)

// programsOf returns the loaded programs of objs by name.
func programsOf(objs any) map[string]*ebpf.Program { return loaded[*ebpf.Program](objs) }

// mapsOf returns the loaded maps of objs by name.
func mapsOf(objs any) map[string]*ebpf.Map { return loaded[*ebpf.Map](objs) }

// loaded returns the non-nil fields of objs of type T by name.
func loaded[T comparable](objs any) map[string]T {
	out := map[string]T{}
	var none T
	for _, f := range fields(objs) {
		if o, ok := f.value.Interface().(T); ok && o != none {
			out[f.name] = o
		}
	}
	return out
}

// Programs returns the programs of objs in declaration order, for attach
// functions that treat them alike.
func Programs(objs any) []Named {
	var out []Named
	for _, f := range fields(objs) {
		if p, ok := f.value.Interface().(*ebpf.Program); ok {
			out = append(out, Named{f.name, p})
		}
	}
	return out
}

// Named is a program with its name in the object.
type Named struct {
	Name string
	Prog *ebpf.Program
}

// Unload closes the programs and maps tagged in objs and clears the fields:
// what a strategy loaded when its attach failed.
func Unload(objs any) error {
	var errs []error
	for _, f := range fields(objs) {
		if c, ok := f.value.Interface().(io.Closer); ok && !f.value.IsNil() {
			errs = append(errs, c.Close())
			f.value.Set(reflect.Zero(f.value.Type()))
		}
	}
	return errors.Join(errs...)
}

// CheckSpec reports every object tagged in objs that spec lacks, or holds
// under another kind: the test each package runs on each strategy's struct.
func CheckSpec(spec *ebpf.CollectionSpec, objs any) error {
	var errs []error
	for _, f := range fields(objs) {
		switch f.value.Type() {
		case programType:
			if spec.Programs[f.name] == nil {
				errs = append(errs, fmt.Errorf("program %s is not in the object", f.name))
			}
		case mapType:
			if spec.Maps[f.name] == nil {
				errs = append(errs, fmt.Errorf("map %s is not in the object", f.name))
			}
		default:
			errs = append(errs, fmt.Errorf("field for %s has type %s, want *ebpf.Program or *ebpf.Map", f.name, f.value.Type()))
		}
	}
	return errors.Join(errs...)
}
