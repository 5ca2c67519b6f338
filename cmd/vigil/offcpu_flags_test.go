package main

import (
	"io"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
)

// --off-cpu keeps every other flag, writes offcpu.pb.gz unless told
// otherwise, and takes --min-block with the sampler's default.
func TestOffCPUFlags(t *testing.T) {
	cases := []struct {
		args     []string
		output   string
		minBlock time.Duration
	}{
		{[]string{"--off-cpu"}, "offcpu.pb.gz", cpuprofile.DefaultMinBlock},
		{[]string{"--off-cpu", "-o", "wait.pb.gz", "--min-block", "50us"}, "wait.pb.gz", 50 * time.Microsecond},
		{[]string{"--off-cpu", "--output", "-", "--format", "folded"}, "-", cpuprofile.DefaultMinBlock},
		{[]string{}, "cpu.pb.gz", cpuprofile.DefaultMinBlock},
	}
	for _, c := range cases {
		f, err := parseProfileFlags(c.args, io.Discard)
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		if f.output != c.output || f.minBlock != c.minBlock || f.offCPU != (len(c.args) > 0) {
			t.Errorf("%v: output %q, min-block %v, off-cpu %v", c.args, f.output, f.minBlock, f.offCPU)
		}
	}
}
