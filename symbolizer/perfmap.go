package symbolizer

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Bounds on JIT perf maps: runtimes append to them for their whole life, so
// they can be long, but not unboundedly so.
const (
	maxPerfMapEntries  = 1 << 20
	maxPerfMapLineSize = 64 << 10
)

// Symbol is one named address range from a symbol source.
type Symbol struct {
	Addr, Size uint64
	Name       string
}

// ParsePerfMap parses a JIT perf map (/tmp/perf-<pid>.map): one
// "START SIZE name" line per compiled function, START and SIZE in hex.
// Malformed lines are skipped and counted in the error, which is returned
// together with every entry that did parse.
func ParsePerfMap(r io.Reader) ([]Symbol, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxPerfMapLineSize)
	var out []Symbol
	bad, firstBad := 0, 0
	for n := 1; sc.Scan(); n++ {
		if len(out) >= maxPerfMapEntries {
			return out, fmt.Errorf("parsing perf map: %w: over %d entries", ErrTooLarge, maxPerfMapEntries)
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		s, ok := parsePerfMapLine(line)
		if !ok {
			if bad == 0 {
				firstBad = n
			}
			bad++
			continue
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading perf map: %w", err)
	}
	if bad > 0 {
		return out, fmt.Errorf("parsing perf map: %w: %d bad lines, first at line %d", ErrMalformed, bad, firstBad)
	}
	return out, nil
}

func parsePerfMapLine(line string) (Symbol, bool) {
	a, rest, ok1 := strings.Cut(line, " ")
	sz, name, ok2 := strings.Cut(strings.TrimLeft(rest, " "), " ")
	if !ok1 || !ok2 {
		return Symbol{}, false
	}
	addr, err1 := strconv.ParseUint(strings.TrimPrefix(a, "0x"), 16, 64)
	size, err2 := strconv.ParseUint(strings.TrimPrefix(sz, "0x"), 16, 64)
	name = strings.TrimSpace(name)
	if err1 != nil || err2 != nil || name == "" || addr+size < addr {
		return Symbol{}, false
	}
	return Symbol{Addr: addr, Size: size, Name: name}, true
}

// symtabFromSymbols builds a lookup table. Later entries at one address win,
// as a JIT that recompiles a function writes the new entry last.
func symtabFromSymbols(in []Symbol) *symtab {
	seen := make(map[uint64]int, len(in))
	syms := make([]symbol, 0, len(in))
	for _, s := range in {
		if i, ok := seen[s.Addr]; ok {
			syms[i] = symbol{addr: s.Addr, size: s.Size, name: s.Name}
			continue
		}
		seen[s.Addr] = len(syms)
		syms = append(syms, symbol{addr: s.Addr, size: s.Size, name: s.Name})
	}
	return newSymtab(syms)
}
