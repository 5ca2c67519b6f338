package profiler

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
)

// fakeSampler hands out one prepared batch per Drain, then empty ones.
type fakeSampler struct {
	mu      sync.Mutex
	batches []*cpuprofile.Batch
	events  []cpuprofile.Event
	stopped bool
}

func (f *fakeSampler) Drain() (*cpuprofile.Batch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) == 0 {
		return &cpuprofile.Batch{}, nil
	}
	b := f.batches[0]
	f.batches = f.batches[1:]
	return b, nil
}

func (f *fakeSampler) Stop() error {
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	return nil
}

func (f *fakeSampler) WatchProcesses(fn func(cpuprofile.Event)) error {
	for _, e := range f.events {
		fn(e)
	}
	return nil
}

type fakePrep struct{ *fakeSymbols }

func (fakePrep) Prepare(int) error { return nil }
func (fakePrep) Forget(int)        {}

func fakeProc(t *testing.T, procs map[int][2]string) string {
	root := t.TempDir()
	for pid, v := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		os.MkdirAll(dir, 0o755)
		if v[0] != "" {
			os.Symlink("/usr/bin/"+v[0], filepath.Join(dir, "exe"))
		}
		os.WriteFile(filepath.Join(dir, "cgroup"), []byte("0::"+v[1]+"\n"), 0o644)
	}
	return root
}

func TestContinuousGroupsByContainerThenExecutable(t *testing.T) {
	id := "4f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
	root := fakeProc(t, map[int][2]string{
		10: {"nginx", "/system.slice/nginx.service"},
		11: {"nginx", "/system.slice/nginx.service"},
		20: {"redis-server", "/system.slice/docker-" + id + ".scope"},
	})
	s := &fakeSampler{batches: []*cpuprofile.Batch{{
		Samples: []cpuprofile.Sample{
			{PID: 10, TID: 10, Comm: "nginx", User: []uint64{0x1000}, Count: 3},
			{PID: 11, TID: 11, Comm: "nginx", User: []uint64{0x1000}, Count: 2},
			{PID: 20, TID: 21, Comm: "redis", User: []uint64{0x1000}, Count: 1},
			{PID: 5, TID: 5, Comm: "kworker/0:1", Kernel: []uint64{0xffff0000}, Count: 4},
		},
		Lost: map[string]uint64{"user_stack_collision": 1},
	}}}
	c := NewContinuous(s, fakePrep{newFake()}, ContinuousOptions{
		Frequency: 19, Interval: time.Hour, DrainInterval: 10 * time.Millisecond,
		Proc: ProcReader{Root: root}, HostName: "node-1",
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var got []Group
	if err := c.Run(ctx, func(g []Group) { got = append(got, g...) }); err != nil {
		t.Fatal(err)
	}
	if !s.stopped {
		t.Error("the sampler was not stopped before the last drain")
	}
	byName := map[string]Group{}
	for _, g := range got {
		byName[g.Service] = g
	}
	if len(byName) != 3 {
		t.Fatalf("groups %v, want nginx, the container and kernel", keys(byName))
	}
	ng := byName["nginx"]
	if total(ng) != 5 || ng.Attrs["process.executable.name"] != "nginx" || ng.Attrs["host.name"] != "node-1" {
		t.Errorf("nginx group: %d samples, attrs %v", total(ng), ng.Attrs)
	}
	if _, ok := ng.Attrs["process.pid"]; ok {
		t.Errorf("a group of two processes must not carry one process.pid: %v", ng.Attrs)
	}
	ct := byName[id]
	if total(ct) != 1 || ct.Attrs["container.id"] != id || ct.Attrs["process.pid"] != "20" {
		t.Errorf("container group: %d samples, attrs %v", total(ct), ct.Attrs)
	}
	if total(byName["kernel"]) != 4 {
		t.Errorf("kernel threads: %d samples", total(byName["kernel"]))
	}
	st := c.Stats()
	if st.Samples != 10 || st.Lost["user_stack_collision"] != 1 || st.Profiles != 3 {
		t.Errorf("stats %+v", st)
	}
	for _, g := range got {
		if err := g.Profile.CheckValid(); err != nil || !g.End.After(g.Start) {
			t.Errorf("group %s: %v, %v..%v", g.Service, err, g.Start, g.End)
		}
	}
}

func TestGroupNameModes(t *testing.T) {
	info := ProcInfo{PID: 7, Executable: "java", ContainerID: "abc"}
	s := cpuprofile.Sample{PID: 7, Comm: "C2 Compiler", User: []uint64{1}}
	for mode, want := range map[string]string{
		GroupAuto: "abc", GroupExecutable: "java", GroupContainer: "abc", GroupPID: "java-7",
	} {
		if got := groupName(mode, info, s); got != want {
			t.Errorf("%s: %q, want %q", mode, got, want)
		}
	}
	if got := groupName(GroupContainer, ProcInfo{Executable: "x"}, s); got != "host" {
		t.Errorf("container mode outside containers: %q", got)
	}
	if got := groupName(GroupAuto, ProcInfo{Executable: "x", ServiceName: "checkout"}, s); got != "checkout" {
		t.Errorf("OTEL_SERVICE_NAME is not used: %q", got)
	}
}

func total(g Group) int64 {
	if g.Profile == nil {
		return 0
	}
	var n int64
	for _, s := range g.Profile.Sample {
		n += s.Value[0]
	}
	return n
}

func keys(m map[string]Group) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
