package profiler

import (
	"errors"
	"slices"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
)

type countingPrep struct{ prepared []int }

func (c *countingPrep) Prepare(pid int) error {
	c.prepared = append(c.prepared, pid)
	return errors.New("gone already") // a failure is logged, never fatal
}
func (c *countingPrep) Forget(int) {}

func TestAnnouncementsPrepareAtOnceAndReportExecsOnce(t *testing.T) {
	prep := &countingPrep{}
	var seen []uint32
	a := announcements{prep: prep, also: func(e cpuprofile.Event) { seen = append(seen, e.PID) }}
	a.handle(cpuprofile.Event{Kind: cpuprofile.NewProcess, PID: 7})
	a.handle(cpuprofile.Event{Kind: cpuprofile.Exec, PID: 8})
	a.handle(cpuprofile.Event{Kind: cpuprofile.Exec, PID: 8})
	if !slices.Equal(prep.prepared, []int{7, 8, 8}) || !slices.Equal(seen, []uint32{7, 8, 8}) {
		t.Errorf("prepared %v, extra work for %v: every announcement must be handled at once", prep.prepared, seen)
	}
	if got := a.takeExecs(); !slices.Equal(got, []uint32{8}) {
		t.Errorf("execs %v, want [8]", got)
	}
	if got := a.takeExecs(); len(got) != 0 {
		t.Errorf("execs reported twice: %v", got)
	}
}
