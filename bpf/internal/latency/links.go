package latency

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vigil-ebpf/vigil/bpf/internal/tracefs"
)

// LoadAttach loads objs (as Load does), attaches it with attachFn and keeps
// it under point; when attaching fails it unloads objs again, so a failed
// strategy leaves nothing behind.
func (b *Base) LoadAttach(spec *ebpf.CollectionSpec, point string, objs any, attachFn func() ([]link.Link, error), extra ...any) error {
	if err := b.Load(spec, objs, extra...); err != nil {
		return err
	}
	links, err := attachFn()
	if err != nil {
		return errors.Join(err, Unload(objs))
	}
	b.Keep(point, links, objs)
	return nil
}

// AttachTracing attaches every program of objs, fentry/fexit or tp_btf
// programs whose target is in their section name, in declaration order.
func AttachTracing(objs any) ([]link.Link, error) {
	var links []link.Link
	for _, p := range Programs(objs) {
		l, err := link.AttachTracing(link.TracingOptions{Program: p.Prog})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("attaching %s: %w", p.Name, err), closeLinks(links))
		}
		links = append(links, l)
	}
	return links, nil
}

// Kprobe is a program for the entry (or, with Return, the return) of a
// kernel function.
type Kprobe struct {
	Fn     string
	Prog   *ebpf.Program
	Return bool
}

// AttachKprobes attaches the kprobes in order.
func AttachKprobes(kps ...Kprobe) ([]link.Link, error) {
	var links []link.Link
	for _, k := range kps {
		attachFn, kind := link.Kprobe, "kprobe"
		if k.Return {
			attachFn, kind = link.Kretprobe, "kretprobe"
		}
		l, err := attachFn(k.Fn, k.Prog, nil)
		if err != nil {
			return nil, errors.Join(kprobeError(kind, k.Fn, err), closeLinks(links))
		}
		links = append(links, l)
	}
	return links, nil
}

// kprobeError names the likely cause when the kernel has no kprobes at all:
// the library's own error then names a tracefs file.
func kprobeError(kind, fn string, err error) error {
	if !haveKprobes() {
		return fmt.Errorf("kernel built without CONFIG_KPROBES (no kprobe PMU, no kprobe_events): %w", err)
	}
	return fmt.Errorf("attaching %s %s: %w", kind, fn, err)
}

// haveKprobes is whether the kernel can create kprobes: through perf (the
// kprobe PMU) or through tracefs kprobe_events.
func haveKprobes() bool {
	if _, err := os.Stat("/sys/bus/event_source/devices/kprobe"); err == nil {
		return true
	}
	dir, err := tracefs.Ensure()
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "kprobe_events"))
	return err == nil
}

// Tracepoint is a program for a classic tracepoint.
type Tracepoint struct {
	Group, Name string
	Prog        *ebpf.Program
}

// AttachTracepoints attaches the tracepoints in order, mounting tracefs
// first when it is not.
func AttachTracepoints(tps ...Tracepoint) ([]link.Link, error) {
	if _, err := tracefs.Ensure(); err != nil {
		return nil, err
	}
	var links []link.Link
	for _, t := range tps {
		l, err := link.Tracepoint(t.Group, t.Name, t.Prog, nil)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("attaching tracepoint %s:%s: %w", t.Group, t.Name, err), closeLinks(links))
		}
		links = append(links, l)
	}
	return links, nil
}

func closeLinks(links []link.Link) error {
	var errs []error
	for _, l := range links {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}
