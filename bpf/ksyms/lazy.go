package ksyms

import (
	"sync"

	"github.com/vigil-ebpf/vigil/symbolizer"
)

// Lazy opens a Namer on the first addresses it is asked to name, so that a
// run without kernel frames loads nothing.
type Lazy struct {
	opts Options

	once  sync.Once
	namer *Namer
	err   error
}

// NewLazy returns a Lazy that opens with opts.
func NewLazy(opts Options) *Lazy { return &Lazy{opts: opts} }

// Name opens the Namer when first called, then names addrs with it. It
// fits symbolizer.Options.KernelNamer: when the Namer cannot be opened, or
// chose kallsyms, it fails and the symbolizer reads kallsyms itself.
func (l *Lazy) Name(addrs []uint64) ([]symbolizer.KernelSymbol, error) {
	l.once.Do(func() { l.namer, l.err = Open(l.opts) })
	if l.err != nil {
		return nil, l.err
	}
	return l.namer.Name(addrs)
}

// Close releases the Namer if one was opened; Name must not be called
// after.
func (l *Lazy) Close() error {
	l.once.Do(func() { l.err = errClosed })
	if l.namer != nil {
		return l.namer.Close()
	}
	return nil
}
