package main

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// BenchmarkAgentMemory runs `vigil run` with its defaults (web view on,
// every latency hook, 19 Hz) while 200 short-lived processes a minute come
// and go (shell, Python, Perl, a C and a Go program, each busy for about
// 300 ms so that it is sampled and its binary symbolized), and reports the
// agent's RSS at the end and at its peak. The figure is after 10
// minutes; VIGIL_MEMORY_BENCH_DURATION (a Go duration) shortens it, and
// VIGIL_MEMORY_BENCH_CONFIG adds configuration to compare settings.
//
//	sudo go test -run '^$' -bench AgentMemory ./cmd/vigil
func BenchmarkAgentMemory(b *testing.B) {
	requireRoot(b)
	d := 10 * time.Minute
	if v := os.Getenv("VIGIL_MEMORY_BENCH_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			b.Fatalf("VIGIL_MEMORY_BENCH_DURATION: %v", err)
		}
	}
	bin := buildVigil(b)
	workloads := shortLivedCommands(b)
	for i := 0; i < b.N; i++ {
		// VIGIL_MEMORY_BENCH_CONFIG adds YAML, to compare settings
		// (e.g. "profiler:\n  unwind: frame-pointer\n").
		cfg := writeConfig(b, "web:\n  listen: 127.0.0.1:0\n"+os.Getenv("VIGIL_MEMORY_BENCH_CONFIG"))
		cmd := exec.Command(bin, "run", "--config", cfg)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		pid := cmd.Process.Pid
		var peak, last int64
		tick := time.NewTicker(300 * time.Millisecond) // 200 a minute
		end := time.Now().Add(d)
		for n := 0; time.Now().Before(end); n++ {
			<-tick.C
			w := workloads[n%len(workloads)]
			c := exec.Command(w[0], w[1:]...)
			if err := c.Start(); err == nil {
				go c.Wait()
			}
			if n%20 == 0 {
				last = rssKiBTB(b, pid)
				peak = max(peak, last)
			}
		}
		tick.Stop()
		last = rssKiBTB(b, pid)
		peak = max(peak, last)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		b.ReportMetric(float64(last)/1024, "rss-end-MiB")
		b.ReportMetric(float64(peak)/1024, "rss-peak-MiB")
		b.ReportMetric(d.Minutes(), "minutes")
	}
}

// shortLivedCommands are programs that burn about 300 ms of CPU and exit.
func shortLivedCommands(b *testing.B) [][]string {
	c := buildC(b, "shortlived", shortC)
	goBin := buildStrippedGo(b)
	return [][]string{
		{c},
		{"sh", "-c", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done"},
		{"python3", "-c", "import time\nt=time.time()\nwhile time.time()-t<0.3: pass"},
		{"perl", "-e", "my $t=time; my $i=0; $i++ while $i < 3000000"},
		{"timeout", "0.3", goBin},
	}
}

func rssKiBTB(tb testing.TB, pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		tb.Fatalf("vigil run is gone: %v", err)
	}
	return parseVmRSS(tb, string(b))
}
