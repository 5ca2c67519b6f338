package main

import (
	"errors"
	"io"
	"strings"
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

// --stacks picks the stacks of off-CPU intervals; a bad value, or --stacks
// without --off-cpu, is a usage error that names the flag.
func TestOffCPUStacksFlag(t *testing.T) {
	f, err := parseProfileFlags([]string{"--off-cpu", "--stacks", "user"}, io.Discard)
	if err != nil || f.stacks != cpuprofile.OffCPUStacksUser {
		t.Fatalf("--stacks user: %+v, %v", f, err)
	}
	if f, err := parseProfileFlags([]string{"--off-cpu"}, io.Discard); err != nil || f.stacks != cpuprofile.OffCPUStacksBoth {
		t.Fatalf("default stacks: %+v, %v", f, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--off-cpu", "--stacks", "all"}, `--stacks "all": must be both, user or kernel`},
		{[]string{"--stacks", "user"}, "--stacks: only applies with --off-cpu"},
	} {
		_, err := parseProfileFlags(c.args, io.Discard)
		var u usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want a usage error with %q", c.args, err, c.want)
		}
	}
}
