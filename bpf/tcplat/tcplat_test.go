package tcplat

import (
	"errors"
	"io"
	"net"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

// listen opens a loopback listener that accepts connections and echoes what
// it reads, until the test ends.
func listen(t testing.TB) *net.TCPListener {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln
}

func port(ln *net.TCPListener) uint16 { return uint16(ln.Addr().(*net.TCPAddr).Port) }

func open(t testing.TB, opts Options) *Program {
	t.Helper()
	testenv.RequireRoot(t)
	p, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func reading(t testing.TB, p *Program, name string) hist.Reading {
	t.Helper()
	rs, err := p.Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no reading %s in %d readings (reports %v)", name, len(rs), p.Reports())
	return hist.Reading{}
}

func histCount(t testing.TB, p *Program, name string) uint64 {
	t.Helper()
	r := reading(t, p, name)
	if len(r.Histograms) != 1 {
		t.Fatalf("%s: %d series, want 1", name, len(r.Histograms))
	}
	return r.Histograms[0].Hist.Count
}

func chosen(p *Program, hook string) string {
	for _, r := range p.Reports() {
		if r.Hook == hook {
			return r.Chosen
		}
	}
	return ""
}

// connectN opens n connections to addr, exchanges one message on each, and
// closes them.
func connectN(t testing.TB, addr string, n int) {
	t.Helper()
	for range n {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

func TestConnectLatencyCountsEachConnect(t *testing.T) {
	ln := listen(t)
	p := open(t, Options{Port: port(ln)})
	if chosen(p, HookConnect) == "" {
		t.Fatalf("connect hook not attached: %v", p.Reports())
	}
	before := histCount(t, p, MetricConnect)
	const n = 25
	connectN(t, ln.Addr().String(), n)
	got := histCount(t, p, MetricConnect) - before
	if got != n {
		t.Fatalf("connect samples = %d, want exactly %d (strategy %s)", got, n, chosen(p, HookConnect))
	}
	h := reading(t, p, MetricConnect).Histograms[0].Hist
	// Loopback connects take microseconds, never 0 ns or over a second.
	if h.ZeroCount != 0 || h.Overflow != 0 || h.SumNs == 0 || h.SumNs > uint64(n)*1e9 {
		t.Fatalf("implausible loopback connect histogram: %+v", h)
	}
}

func TestRefusedConnectIsNotALatency(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	pt := port(ln)
	ln.Close() // nothing listens on the port any more: connects get RST
	p := open(t, Options{Port: pt})
	before := histCount(t, p, MetricConnect)
	for range 3 {
		if c, err := net.Dial("tcp4", addr); err == nil {
			c.Close()
			t.Skip("port was reused by another listener")
		}
	}
	if got := histCount(t, p, MetricConnect) - before; got != 0 {
		t.Fatalf("%d refused connects recorded as latencies", got)
	}
	var failed uint64
	for _, c := range reading(t, p, MetricUnmeasured).Counters {
		if c.Attrs["reason"] == "failed" {
			failed = c.Value
		}
	}
	if failed != 3 {
		t.Fatalf("failed connects = %d, want 3", failed)
	}
}

func TestRTTSamplesAfterDataExchange(t *testing.T) {
	ln := listen(t)
	p := open(t, Options{Port: port(ln)})
	before := histCount(t, p, MetricRTT)
	connectN(t, ln.Addr().String(), 5)
	r := reading(t, p, MetricRTT)
	h := r.Histograms[0].Hist
	if h.Count-before < 5 {
		t.Fatalf("rtt samples = %d after 5 echoed messages, want at least 5 (strategy %s)", h.Count-before, chosen(p, HookRTT))
	}
	// srtt is in whole microseconds: every sample is a multiple of 1000 ns
	// and loopback RTTs are far below a second.
	if h.SumNs%1000 != 0 || h.SumNs > h.Count*1e9 || r.Unit != "s" {
		t.Fatalf("implausible rtt histogram: %+v unit %q", h, r.Unit)
	}
}

func TestSkipFallsBackToTracepoint(t *testing.T) {
	p := open(t, Options{Skip: map[string]bool{StrategyFentry: true, StrategyKprobe: true}})
	for _, r := range p.Reports() {
		if r.Chosen != StrategyTracepoint {
			t.Errorf("%s: chose %q, want tracepoint", r.Hook, r.Chosen)
		}
		for _, a := range r.Attempts {
			if a.Strategy != StrategyTracepoint && a.Err == nil {
				t.Errorf("%s: skipped strategy %s has no reason", r.Hook, a.Strategy)
			}
		}
	}
}

func TestAllSkippedIsNoStrategy(t *testing.T) {
	testenv.RequireRoot(t)
	_, err := Open(Options{Skip: map[string]bool{StrategyFentry: true, StrategyKprobe: true, StrategyTracepoint: true}})
	if !errors.Is(err, attach.ErrNoStrategy) {
		t.Fatalf("Open with every strategy skipped: %v, want ErrNoStrategy", err)
	}
}

// Every better strategy that fails here must say why.
func TestReportsNameReasons(t *testing.T) {
	p := open(t, Options{})
	for _, r := range p.Reports() {
		t.Log(r.String())
		if r.Chosen == "" {
			t.Errorf("%s: no strategy", r.Hook)
		}
		for _, a := range r.Attempts {
			if a.Strategy != r.Chosen && (a.Err == nil || a.Err.Error() == "") {
				t.Errorf("%s: %s failed without a reason", r.Hook, a.Strategy)
			}
		}
	}
}
