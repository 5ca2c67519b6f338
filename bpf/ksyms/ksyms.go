// Package ksyms names kernel addresses for the profiler without reading
// /proc/kallsyms, which the kernel formats whole (over 100,000 lines, tens
// of milliseconds) however few addresses a profile holds.
//
// Strategies, best first:
//
//   - snprintf: a BPF program of type syscall, run on demand with
//     BPF_PROG_RUN and never attached, formats each address with
//     bpf_snprintf's "%pS", the kernel's own symbol lookup
//     ("name+0xoff/0xsize [module]"). Needs Linux 5.16
//     (bpf_kallsyms_lookup_name, which finds the kernel image's text).
//   - kallsyms: the symbolizer reads /proc/kallsyms, as before; chosen
//     when its addresses are visible.
package ksyms

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/symbolizer"
)

// Hook is the hook's name in bpf/hooks and vigil check.
const Hook = "ksyms"

// Strategy names.
const (
	StrategySnprintf = "snprintf"
	StrategyKallsyms = "kallsyms"
)

// Sizes fixed by ksyms.bpf.c.
const (
	batch    = 64  // addresses per run
	nameSize = 192 // bytes per formatted symbol
)

// ErrKallsyms is what Name returns when the kallsyms strategy was chosen:
// the symbolizer reads /proc/kallsyms itself.
var ErrKallsyms = errors.New("kernel addresses are named from /proc/kallsyms")

var errClosed = errors.New("naming kernel addresses: closed")

// Options configure Open.
type Options struct {
	Skip map[string]bool // strategy names not to try
	// KallsymsPath and SysRoot default to /proc/kallsyms and /sys.
	KallsymsPath string
	SysRoot      string
}

// Namer names kernel addresses with the strategy Open chose. It is safe
// for concurrent use.
type Namer struct {
	opts   Options
	report attach.Report

	mu      sync.Mutex
	objs    *ksymsObjects // nil unless snprintf was chosen
	text    [2]uint64     // the kernel image's text and init text
	modules map[string][2]uint64
}

// Open chooses a strategy by trying them in order. When none works the
// error wraps attach.ErrNoStrategy and gives each one's reason.
func Open(opts Options) (*Namer, error) {
	if opts.KallsymsPath == "" {
		opts.KallsymsPath = "/proc/kallsyms"
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/sys"
	}
	n := &Namer{opts: opts, modules: map[string][2]uint64{}}
	r, err := attach.First(Hook, []attach.Strategy{
		{Name: StrategySnprintf, Try: n.loadBPF},
		{Name: StrategyKallsyms, Try: n.checkKallsyms},
	}, opts.Skip)
	n.report = r
	if err != nil {
		return nil, err
	}
	return n, nil
}

// loadBPF loads the programs, finds the kernel image and names one
// address of it, so a kernel that loads but cannot format is refused here.
func (n *Namer) loadBPF() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("raising the memlock limit: %w", err)
	}
	objs := new(ksymsObjects)
	if err := loadKsymsObjects(objs, nil); err != nil {
		return fmt.Errorf("loading the kernel symbol programs: %w", err)
	}
	if _, err := objs.TextBounds.Run(&ebpf.RunOptions{}); err != nil {
		objs.Close()
		return fmt.Errorf("finding the kernel's text: %w", err)
	}
	var start, end uint64
	if err := errors.Join(objs.TextStart.Get(&start), objs.TextEnd.Get(&end)); err != nil {
		objs.Close()
		return err
	}
	if start == 0 || end <= start {
		objs.Close()
		return fmt.Errorf("the kernel's text is hidden (_stext %#x, _etext %#x): kernel.kptr_restrict, or no CAP_SYSLOG", start, end)
	}
	n.objs, n.text = objs, [2]uint64{start, end}
	syms, err := n.name([]uint64{start})
	if err == nil && syms[0].Name == "" {
		err = fmt.Errorf("%%pS does not name the kernel's first function at %#x", start)
	}
	if err != nil {
		n.objs = nil
		objs.Close()
		return err
	}
	return nil
}

// checkKallsyms checks that kallsyms shows addresses: its first text
// symbol is enough (per-CPU symbols before it sit at small addresses, zero
// included), and costs the kernel little.
func (n *Namer) checkKallsyms() error {
	f, err := os.Open(n.opts.KallsymsPath)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	for range maxLinesBeforeText {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("reading %s: no text symbol: %w", n.opts.KallsymsPath, err)
		}
		f := bytes.Fields(line)
		if len(f) < 3 || len(f[1]) != 1 || !bytes.Contains([]byte("tT"), f[1]) {
			continue
		}
		if v, err := strconv.ParseUint(string(f[0]), 16, 64); err != nil || v == 0 {
			return fmt.Errorf("%s hides addresses (kernel.kptr_restrict, or no CAP_SYSLOG)", n.opts.KallsymsPath)
		}
		return nil
	}
	return fmt.Errorf("%s: no text symbol in its first %d lines", n.opts.KallsymsPath, maxLinesBeforeText)
}

// maxLinesBeforeText bounds the lines read before kallsyms's first text
// symbol: the kernel's per-CPU symbols come first, a few hundred.
const maxLinesBeforeText = 100000

// Report says which strategy was chosen and why better ones were not.
func (n *Namer) Report() attach.Report { return n.report }

// BPF reports whether addresses are named in BPF (snprintf).
func (n *Namer) BPF() bool { return n.report.Chosen == StrategySnprintf }

// Close releases the programs.
func (n *Namer) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.objs == nil {
		return nil
	}
	err := n.objs.Close()
	n.objs = nil
	return err
}

// Name names addresses, one answer per address; an address no symbol
// covers gets an empty Name. With the kallsyms strategy it fails with
// ErrKallsyms. It fits symbolizer.Options.KernelNamer.
func (n *Namer) Name(addrs []uint64) ([]symbolizer.KernelSymbol, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.objs == nil {
		if n.BPF() {
			return nil, errClosed
		}
		return nil, ErrKallsyms
	}
	return n.name(addrs)
}

// name runs the program over addrs, a batch at a time. Called with mu held
// (or before Open returns).
func (n *Namer) name(addrs []uint64) ([]symbolizer.KernelSymbol, error) {
	out := make([]symbolizer.KernelSymbol, 0, len(addrs))
	var in [batch]uint64
	var names [batch][nameSize]byte
	var lens [batch]int64
	for len(addrs) > 0 {
		b := addrs[:min(batch, len(addrs))]
		addrs = addrs[len(b):]
		copy(in[:], b)
		if err := errors.Join(n.objs.Addrs.Set(in), n.objs.Count.Set(uint32(len(b)))); err != nil {
			return nil, fmt.Errorf("naming kernel addresses: %w", err)
		}
		if _, err := n.objs.NameAddrs.Run(&ebpf.RunOptions{}); err != nil {
			return nil, fmt.Errorf("naming kernel addresses: %w", err)
		}
		if err := errors.Join(n.objs.Names.Get(&names), n.objs.Lens.Get(&lens)); err != nil {
			return nil, fmt.Errorf("naming kernel addresses: %w", err)
		}
		for i, a := range b {
			var sym symbolizer.KernelSymbol
			if l := lens[i]; l > 0 && l <= nameSize { // else an error, or cut short
				sym = parseSymbol(string(names[i][:l-1]))
			}
			n.place(&sym, a)
			out = append(out, sym)
		}
	}
	return out, nil
}

// parseSymbol reads "%pS" text: "name+0xoff/0xsize" with " [module]" for
// a module's function, or the bare "0x..." address when no symbol covers
// it (an empty Name).
func parseSymbol(s string) symbolizer.KernelSymbol {
	var sym symbolizer.KernelSymbol
	if rest, mod, ok := strings.Cut(s, " ["); ok {
		if !strings.HasSuffix(mod, "]") || mod == "]" {
			return symbolizer.KernelSymbol{}
		}
		s, sym.Module = rest, strings.TrimSuffix(mod, "]")
		if name, _, ok := strings.Cut(sym.Module, " "); ok { // "[module build-id]"
			sym.Module = name
		}
	}
	plus := strings.LastIndexByte(s, '+')
	if plus <= 0 {
		return symbolizer.KernelSymbol{}
	}
	off, size, ok := strings.Cut(s[plus+1:], "/")
	o, err1 := strconv.ParseUint(strings.TrimPrefix(off, "0x"), 16, 64)
	z, err2 := strconv.ParseUint(strings.TrimPrefix(size, "0x"), 16, 64)
	if !ok || err1 != nil || err2 != nil || !strings.HasPrefix(off, "0x") || !strings.HasPrefix(size, "0x") {
		return symbolizer.KernelSymbol{}
	}
	sym.Name, sym.Offset, sym.Size = s[:plus], o, z
	return sym
}

// place says where a named address lives: "%pS" gives no module for the
// kernel image and for BPF programs alike, the kernel image's text (and
// the "bpf_" BPF's names start with) tells them apart. Called with mu held.
func (n *Namer) place(sym *symbolizer.KernelSymbol, addr uint64) {
	if sym.Name == "" {
		return
	}
	switch {
	case sym.Module != "":
		t := n.moduleText(sym.Module)
		sym.ModuleStart, sym.ModuleLimit = t[0], t[1]
	case addr >= n.text[0] && addr < n.text[1] || !strings.HasPrefix(sym.Name, "bpf_"):
		// Outside the text, the kernel image's functions are its exit
		// text (built-in __exit functions, never run).
		sym.ModuleStart, sym.ModuleLimit = n.text[0], n.text[1]
	default: // programs, trampolines and dispatchers are all "bpf_..."
		sym.Module = "bpf"
	}
}

// moduleText is a module's loaded core (text first) from sysfs, zero when
// unknown. Called with mu held.
func (n *Namer) moduleText(name string) [2]uint64 {
	if t, ok := n.modules[name]; ok {
		return t
	}
	var t [2]uint64
	if !strings.ContainsAny(name, "/.") {
		dir := filepath.Join(n.opts.SysRoot, "module", name)
		start, err1 := readNumber(filepath.Join(dir, "sections", ".text"), 0)
		size, err2 := readNumber(filepath.Join(dir, "coresize"), 10)
		if err1 == nil && err2 == nil && start > 0 && size > 0 {
			t = [2]uint64{start, start + size}
		}
	}
	n.modules[name] = t
	return t
}

func readNumber(path string, base int) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), base, 64)
}
