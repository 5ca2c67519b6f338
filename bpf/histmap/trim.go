package histmap

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// KeepPrograms removes from spec every program but the named ones, and every
// map those don't use. A latency object carries the programs of all its
// attach strategies; loading only one strategy's programs and maps keeps a
// kernel that lacks another strategy's features (fentry, task storage)
// from refusing the whole object. Set variables before trimming: the
// variables of sections no kept program reads are dropped too.
func KeepPrograms(spec *ebpf.CollectionSpec, names ...string) error {
	progs := make(map[string]*ebpf.ProgramSpec, len(names))
	used := map[string]bool{}
	for _, n := range names {
		ps, ok := spec.Programs[n]
		if !ok {
			return fmt.Errorf("program %s is not in the object", n)
		}
		progs[n] = ps
		for _, ins := range ps.Instructions {
			if ref := ins.Reference(); ref != "" && ins.IsLoadFromMap() {
				used[ref] = true
			}
		}
	}
	for name := range spec.Maps {
		if !used[name] {
			delete(spec.Maps, name)
		}
	}
	for name, v := range spec.Variables {
		if !used[v.SectionName] {
			delete(spec.Variables, name)
		}
	}
	spec.Programs = progs
	return nil
}
