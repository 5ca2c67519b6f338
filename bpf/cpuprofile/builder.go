package cpuprofile

import (
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/vigil-ebpf/vigil/symbolizer"
	"github.com/vigil-ebpf/vigil/symbolizer/unwind"
)

// builder turns queued files into tables, one at a time on its own
// goroutine, so a process's registration never waits for a large library
// and building costs at most one core.
type builder struct {
	reg *registry
	q   worker[buildJob]
}

type buildJob struct {
	ref  *fileRef
	file *os.File // kept open from registration: the process may be gone by now; nil for the vDSO
	elf  *elf.File
	path string // as mapped, and the process's root: to find a debug file
	root string
}

func (j buildJob) close() {
	if j.file != nil {
		j.file.Close()
	}
}

func newBuilder(r *registry) *builder {
	b := &builder{reg: r}
	b.q.start(func(j buildJob) { b.build(j); j.close() }, buildJob.close)
	return b
}

func (b *builder) enqueue(j buildJob) { b.q.push(j, nil) }

func (b *builder) close() { b.q.stop() }

// wait blocks until every table queued so far is built (tests and benchmarks).
func (b *builder) wait() { b.q.wait() }

// build makes one file's table. Go binaries keep frame pointers in all
// their code and their CFI (when not stripped) is only .debug_frame: the
// frame pointer is exact there and cheaper, so they get no table.
func (b *builder) build(j buildJob) {
	r, st := b.reg, b.reg.store
	if isGo(j.elf) {
		_ = st.setState(j.ref.table, fileNoTable)
		r.count(func(c *unwindCounters) { c.tablesNoCFI++ })
		return
	}
	start := time.Now()
	t, err := buildTable(j)
	if errors.Is(err, errTooMuchCFI) {
		_ = st.setState(j.ref.table, fileNoTable)
		r.count(func(c *unwindCounters) { c.tablesTooLarge++ })
		slog.Debug("unwind table not built", "component", "cpuprofile", "file", j.path, "err", err)
		return
	}
	if errors.Is(err, unwind.ErrNoCFI) {
		_ = st.setState(j.ref.table, fileNoTable)
		r.count(func(c *unwindCounters) { c.tablesNoCFI++ })
		return
	}
	if err == nil {
		err = st.place(j.ref.table, t)
	}
	took := time.Since(start)
	r.count(func(c *unwindCounters) {
		c.buildTime += took
		switch {
		case errors.Is(err, ErrNoRoom):
			c.tablesNoRoom++
		case err != nil:
			c.tablesFailed++
		default:
			c.tablesBuilt++
			c.tableRows += uint64(len(t.Rows))
			c.tableSourceBytes += uint64(t.SourceBytes())
			for k, v := range t.Unsupported {
				c.unsupported[k] += uint64(v)
			}
		}
	})
	if err != nil {
		slog.Debug("unwind table not built", "component", "cpuprofile", "file", j.path, "err", err)
	}
}

// buildTable reads the file's own CFI or, when it has none, the
// .debug_frame of its separate debug file (by build ID or debuglink). The
// file comes from another machine's build: a panic in a parser becomes an
// error for this file alone.
func buildTable(j buildJob) (t *unwind.Table, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("reading call frame information: panic: %v", r)
		}
	}()
	if n := cfiSize(j.elf); n > maxCFIBytes {
		return nil, fmt.Errorf("%w: %d bytes", errTooMuchCFI, n)
	}
	t, err = unwind.Build(j.elf)
	if !errors.Is(err, unwind.ErrNoCFI) || j.file == nil {
		return t, err
	}
	st, serr := j.file.Stat()
	if serr != nil {
		return t, err
	}
	dbg, closer := symbolizer.DebugFile(j.file, st.Size(), j.path, j.root, nil)
	if dbg == nil {
		return t, err
	}
	defer closer.Close()
	return unwind.BuildWithDebug(j.elf, dbg)
}

// maxCFIBytes bounds the call frame information vigil reads from one file.
// Building takes about ten times its size in transient memory; the largest
// real libraries have a few MiB (libLLVM 6), so more is a file vigil should
// not trust with its memory.
const maxCFIBytes = 64 << 20

var errTooMuchCFI = errors.New("more call frame information than vigil reads")

// cfiSize is what the file's headers claim its CFI sections hold.
func cfiSize(f *elf.File) uint64 {
	var n uint64
	for _, name := range []string{".eh_frame", ".debug_frame"} {
		if s := f.Section(name); s != nil && s.Type != elf.SHT_NOBITS {
			n += s.Size
		}
	}
	return n
}

func isGo(f *elf.File) (goBin bool) {
	defer func() {
		if recover() != nil {
			goBin = false
		}
	}()
	return f.Section(".gopclntab") != nil || f.Section(".go.buildinfo") != nil
}
