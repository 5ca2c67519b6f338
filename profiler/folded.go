package profiler

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

// WriteFolded writes collapsed stacks, one "root;...;leaf count" line per
// distinct stack, the format flame graph tools read. The first frame is the
// thread's comm, so each program gets its own tower. Inlined calls are
// frames of their own; counts are samples in a CPU profile and nanoseconds
// blocked in an off-CPU one.
func WriteFolded(w io.Writer, p *profile.Profile) error {
	vi := weightIndex(p)
	lines := map[string]int64{}
	for _, s := range p.Sample {
		lines[foldedStack(s)] += s.Value[vi]
	}
	keys := make([]string, 0, len(lines))
	for k := range lines {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bw := bufio.NewWriter(w)
	for _, k := range keys {
		fmt.Fprintf(bw, "%s %d\n", k, lines[k])
	}
	return bw.Flush()
}

func foldedStack(s *profile.Sample) string {
	var frames []string
	if comm := s.Label["comm"]; len(comm) > 0 && comm[0] != "" {
		frames = append(frames, foldedName(comm[0]))
	}
	for i := len(s.Location) - 1; i >= 0; i-- {
		lines := s.Location[i].Line
		for j := len(lines) - 1; j >= 0; j-- {
			frames = append(frames, foldedName(lines[j].Function.Name))
		}
	}
	return strings.Join(frames, ";")
}

// foldedName keeps a name from breaking the format: ';' separates frames and
// the last space separates the count.
func foldedName(s string) string {
	return strings.NewReplacer(";", ":", "\n", " ").Replace(s)
}
