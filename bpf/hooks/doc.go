// Package hooks is vigil's one list of hooks: every place where a BPF
// program meets the kernel, with its strategies in the order they are
// tried and the oldest kernel each needs. The CLI's --hooks, vigil check,
// the configuration's latency.hooks and latency.skip_strategies (names and
// defaults), the kernel matrix's probe and the per-strategy tests all read
// this list, so a name is written once.
//
// It depends on the standard library only: the config package, which must
// not depend on cilium/ebpf, reads it too. The code that opens each hook
// therefore lives with its callers (cmd/vigil and bpf/kernels/probe), one
// adapter per package, because each package has its own Options type; tests
// there fail when a hook listed here has no adapter.
//
// # Adding a hook
//
// A page-fault latency histogram, say:
//
//  1. Write the package, bpf/faultlat, as the others are: faultlat.bpf.c,
//     gen.go, Open and Read on a Program that embeds latency.Base
//     (bpf/internal/latency: Report, StartTime, Stats, Close), its shared
//     maps and each strategy's programs as ebpf-tagged structs loaded
//     through the Base, its attach strategies tried in the order given
//     here, with a test per strategy that judges its error through
//     testenv.RequireStrategy.
//  2. Add one Hook to the list in hooks.go: its name (what latency.hooks and
//     --hooks take), Latency, the package as Suite, and its point with the
//     strategies and the kernel each needs (the README's kernel table says
//     the same in words; change both).
//  3. Add its adapter to latencyOpeners in cmd/vigil/latency_hooks.go and
//     to openers in bpf/kernels/probe/hooks.go, and its expected chain to
//     every release block of bpf/kernels/expect.txt.
//
// go test ./bpf/kernels/ ./bpf/kernels/probe/ ./cmd/vigil/ ./config/ fails
// until each of those is done: an expectation file without the hook, a
// hook without an adapter, a strategy order that differs from the
// package's.
package hooks
