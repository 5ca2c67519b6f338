package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRunFootprint starts `vigil run` with its defaults on a quiet
// machine and reports its memory: the peak RSS of the first 10 s
// (start-up), then at 30 s the RSS split into anonymous, file-backed and
// shared pages, the RSS of the BPF maps mmapped into vigil (the unwind
// tables), the kernel memory of its BPF maps (memlock in fdinfo) and its
// Go heap by owner (from its own heap profile, VIGIL_DEBUG_PPROF).
//
//	sudo go test -run '^$' -bench RunFootprint -benchtime 1x ./cmd/vigil
func BenchmarkRunFootprint(b *testing.B) {
	requireRoot(b)
	bin := benchVigil(b)
	for b.Loop() {
		addr := freeLoopbackAddr(b)
		cfg := writeConfig(b, "web:\n  listen: 127.0.0.1:0\n")
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Env = append(os.Environ(), "VIGIL_DEBUG_PPROF="+addr)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		pid := cmd.Process.Pid
		time.Sleep(10 * time.Second)
		startPeak := statusKiB(b, pid, "VmHWM")
		time.Sleep(20 * time.Second)
		reportFootprint(b, pid, addr)
		b.ReportMetric(float64(startPeak)/1024, "startup-peak-MiB")
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
}

// reportFootprint reports pid's memory now, broken down.
func reportFootprint(b *testing.B, pid int, pprofAddr string) {
	b.ReportMetric(float64(statusKiB(b, pid, "VmRSS"))/1024, "rss-MiB")
	b.ReportMetric(float64(statusKiB(b, pid, "RssAnon"))/1024, "anon-MiB")
	b.ReportMetric(float64(statusKiB(b, pid, "RssFile"))/1024, "file-MiB")
	b.ReportMetric(float64(statusKiB(b, pid, "RssShmem"))/1024, "shmem-MiB")
	b.ReportMetric(float64(bpfMmapRSSKiB(b, pid))/1024, "bpf-mmap-rss-MiB")
	memlock, maps := bpfMapMemlock(b, pid)
	b.ReportMetric(float64(memlock)/(1<<20), "bpf-maps-MiB")
	b.ReportMetric(float64(maps), "bpf-maps")
	for owner, n := range heapByOwner(b, pprofAddr) {
		b.ReportMetric(float64(n)/(1<<20), "heap-"+owner+"-MiB")
	}
}

func statusKiB(tb testing.TB, pid int, field string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatalf("vigil is gone: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// bpfMmapRSSKiB sums the resident pages of BPF maps mmapped into pid.
func bpfMmapRSSKiB(tb testing.TB, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var total int64
	inBPF := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			inBPF = len(fields) >= 6 && strings.HasPrefix(fields[5], "anon_inode:bpf-map")
			continue
		}
		if inBPF && len(fields) >= 2 && fields[0] == "Rss:" {
			n, _ := strconv.ParseInt(fields[1], 10, 64)
			total += n
		}
	}
	return total
}

// bpfMapMemlock sums the memlock field of pid's BPF map fds: the kernel
// memory each map is charged.
func bpfMapMemlock(tb testing.TB, pid int) (bytes int64, maps int) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || link != "anon_inode:bpf-map" {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		id, memlock := "", int64(0)
		for _, line := range strings.Split(string(info), "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "map_id":
				id = strings.TrimSpace(v)
			case "memlock":
				memlock, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		if !seen[id] { // the same map may be open on several fds
			seen[id] = true
			bytes += memlock
			maps++
		}
	}
	return bytes, maps
}

// heapOwners maps vigil's packages to the owners the issue asks about; the
// first vigil frame of an allocation's stack (innermost first) decides.
var heapOwners = []struct{ pkg, owner string }{
	{"/symbolizer", "symbolizer"},
	{"/bpf/cpuprofile", "unwind"},
	{"/exporter/web", "web"},
	{"/exporter", "exporter"},
	{"/profiler", "profiler"},
	{"/bpf/", "bpf"},
}

// heapByOwner reads vigil's in-use heap from its debug endpoint (after a
// GC) and sums it by owner.
func heapByOwner(tb testing.TB, addr string) map[string]int64 {
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1&gc=1")
	if err != nil {
		tb.Logf("heap profile: %v", err)
		return nil
	}
	defer resp.Body.Close()
	return sumHeapRecords(resp.Body)
}

// sumHeapRecords parses the text heap profile: a record is
// "inuse_objects: inuse_bytes [...] @ pcs" and then its frames as
// "#\tpc\tfunction+off\tfile:line".
func sumHeapRecords(r io.Reader) map[string]int64 {
	out := map[string]int64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var bytes int64
	owner := ""
	flush := func() {
		if bytes > 0 {
			out[cmp(owner, "other")] += bytes
		}
		bytes, owner = 0, ""
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, " @ ") && !strings.HasPrefix(line, "#") {
			flush()
			f := strings.Fields(line)
			if len(f) >= 2 {
				bytes, _ = strconv.ParseInt(f[1], 10, 64)
			}
			continue
		}
		if !strings.HasPrefix(line, "#\t") || owner != "" {
			if strings.HasPrefix(line, "# runtime.MemStats") {
				break
			}
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 3 || !strings.Contains(f[2], "vigil-ebpf/vigil/") {
			continue
		}
		fn := f[2][strings.Index(f[2], "vigil-ebpf/vigil")+len("vigil-ebpf/vigil"):]
		for _, o := range heapOwners {
			if strings.HasPrefix(fn, o.pkg) {
				owner = o.owner
				break
			}
		}
		if owner == "" {
			owner = "agent"
		}
	}
	flush()
	return out
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// benchVigil is the binary measured: VIGIL_BENCH_BIN when set (to compare
// with another build in the same run), else this tree's.
func benchVigil(tb testing.TB) string {
	if p := os.Getenv("VIGIL_BENCH_BIN"); p != "" {
		return p
	}
	return buildVigil(tb)
}

func freeLoopbackAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// BenchmarkProfileFootprint runs `vigil profile -d 1s` (whole machine) ten
// times per round and reports the median and worst CPU time and peak RSS.
//
//	sudo go test -run '^$' -bench ProfileFootprint -benchtime 1x ./cmd/vigil
func BenchmarkProfileFootprint(b *testing.B) {
	requireRoot(b)
	bin := benchVigil(b)
	out := filepath.Join(b.TempDir(), "cpu.pb.gz")
	for b.Loop() {
		var cpu []float64
		var rss []int64
		for range 10 {
			cmd := exec.Command(bin, "profile", "-d", "1s", "-o", out)
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("vigil profile: %v\n%s", err, o)
			}
			ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
			cpu = append(cpu, time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds())
			rss = append(rss, ru.Maxrss)
		}
		slices.Sort(cpu)
		slices.Sort(rss)
		b.ReportMetric(cpu[len(cpu)/2], "cpu-s-median")
		b.ReportMetric(cpu[len(cpu)-1], "cpu-s-worst")
		b.ReportMetric(float64(rss[len(rss)/2])/1024, "maxrss-MiB-median")
		b.ReportMetric(float64(rss[len(rss)-1])/1024, "maxrss-MiB-worst")
	}
}
