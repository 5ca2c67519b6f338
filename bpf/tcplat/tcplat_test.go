package tcplat

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/hist"
	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

var allStrategies = []string{StrategyFentry, StrategyKprobe, StrategyTracepoint}

// listen opens a loopback listener ("tcp4" on 127.0.0.1 or "tcp6" on ::1)
// that echoes what it reads, until the test ends.
func listen(tb testing.TB, network string) *net.TCPListener {
	tb.Helper()
	ip := net.IPv4(127, 0, 0, 1)
	if network == "tcp6" {
		ip = net.IPv6loopback
	}
	ln, err := net.ListenTCP(network, &net.TCPAddr{IP: ip})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
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

func open(tb testing.TB, opts Options) *Program {
	tb.Helper()
	testenv.RequireRoot(tb)
	p, err := Open(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

// openWith opens with only strategy allowed. It skips the test only when
// this kernel is too old for that strategy or lacks what it needs (bpf/hooks
// and testenv say which); any other failure to attach hook that way fails.
func openWith(t *testing.T, strategy, hook string, port uint16) *Program {
	t.Helper()
	testenv.RequireRoot(t)
	skip := map[string]bool{}
	for _, s := range allStrategies {
		skip[s] = s != strategy
	}
	p, err := Open(Options{Skip: skip, Port: port})
	testenv.RequireStrategy(t, hook, strategy, err)
	t.Cleanup(func() { p.Close() })
	if r := report(p, hook); r.Chosen != strategy {
		// Another hook attached, this one did not.
		testenv.RequireStrategy(t, hook, strategy, fmt.Errorf("%s: %s", hook, r.Reasons()))
	}
	return p
}

func report(p *Program, hook string) attach.Report {
	for _, r := range p.Reports() {
		if r.Hook == hook {
			return r
		}
	}
	return attach.Report{Hook: hook}
}

func reading(tb testing.TB, p *Program, name string) hist.Reading {
	tb.Helper()
	rs, err := p.Read()
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	tb.Fatalf("no reading %s in %d readings (reports %v)", name, len(rs), p.Reports())
	return hist.Reading{}
}

func histogram(tb testing.TB, p *Program, name string) hist.Histogram {
	tb.Helper()
	r := reading(tb, p, name)
	if len(r.Histograms) != 1 || r.Unit != "s" {
		tb.Fatalf("%s: %d series, unit %q; want 1 series in s", name, len(r.Histograms), r.Unit)
	}
	return r.Histograms[0].Hist
}

func unmeasured(tb testing.TB, p *Program, reason string) uint64 {
	tb.Helper()
	for _, c := range reading(tb, p, MetricUnmeasured).Counters {
		if c.Attrs["reason"] == reason {
			return c.Value
		}
	}
	tb.Fatalf("no unmeasured connects with reason %s", reason)
	return 0
}

// connectN opens n connections to ln, exchanges one message on each, and
// closes them.
func connectN(tb testing.TB, ln *net.TCPListener, n int) {
	tb.Helper()
	for range n {
		c, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := c.Write([]byte("ping")); err != nil {
			tb.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			tb.Fatal(err)
		}
		c.Close()
	}
}

// Each connect to the test's own port is one sample, over IPv4 and IPv6,
// with every strategy this kernel supports.
func TestConnectLatencyCountsEachConnect(t *testing.T) {
	for _, s := range allStrategies {
		for _, network := range []string{"tcp4", "tcp6"} {
			t.Run(s+"/"+network, func(t *testing.T) {
				testenv.RequireRoot(t)
				ln := listen(t, network)
				p := openWith(t, s, HookConnect, port(ln))
				before := histogram(t, p, MetricConnect)
				const n = 25
				connectN(t, ln, n)
				h := histogram(t, p, MetricConnect)
				if got := h.Count - before.Count; got != n {
					t.Fatalf("connect samples = %d, want exactly %d", got, n)
				}
				// Loopback connects take microseconds: never 0 ns, never a second.
				if h.ZeroCount != 0 || h.Overflow != 0 || h.SumNs == before.SumNs || h.SumNs-before.SumNs > n*uint64(time.Second) {
					t.Fatalf("implausible loopback connect histogram: %+v", h)
				}
				if u := unmeasured(t, p, "untracked"); u != 0 {
					t.Fatalf("%d connects started after attach counted as untracked", u)
				}
			})
		}
	}
}

// A refused connect (RST in answer to the SYN) is counted as failed, not
// as a latency.
func TestRefusedConnectIsNotALatency(t *testing.T) {
	for _, s := range allStrategies {
		t.Run(s, func(t *testing.T) {
			testenv.RequireRoot(t)
			ln := listen(t, "tcp4")
			addr, pt := ln.Addr().String(), port(ln)
			ln.Close() // nothing listens on the port any more
			p := openWith(t, s, HookConnect, pt)
			before := histogram(t, p, MetricConnect).Count
			for range 3 {
				if c, err := net.Dial("tcp4", addr); err == nil {
					c.Close()
					t.Skip("skipped: the port was taken by another listener meanwhile")
				}
			}
			if got := histogram(t, p, MetricConnect).Count - before; got != 0 {
				t.Fatalf("%d refused connects recorded as latencies", got)
			}
			if failed := unmeasured(t, p, "failed"); failed != 3 {
				t.Fatalf("failed connects = %d, want 3", failed)
			}
		})
	}
}

func TestRTTSamplesAfterDataExchange(t *testing.T) {
	for _, s := range allStrategies {
		t.Run(s, func(t *testing.T) {
			testenv.RequireRoot(t)
			ln := listen(t, "tcp4")
			p := openWith(t, s, HookRTT, port(ln))
			before := histogram(t, p, MetricRTT).Count
			connectN(t, ln, 5)
			h := histogram(t, p, MetricRTT)
			// Both ends receive at least the message or its echo on each
			// connection.
			if h.Count-before < 5 {
				t.Fatalf("rtt samples = %d after 5 echoed messages, want at least 5", h.Count-before)
			}
			// srtt is in whole microseconds, and loopback RTTs are far below
			// a second.
			if h.SumNs%1000 != 0 || h.SumNs > h.Count*uint64(time.Second) || h.ZeroCount != 0 {
				t.Fatalf("implausible rtt histogram: %+v", h)
			}
		})
	}
}

func TestSkipFallsBackToTracepoint(t *testing.T) {
	p := open(t, Options{Skip: map[string]bool{StrategyFentry: true, StrategyKprobe: true}})
	for _, r := range p.Reports() {
		if r.Chosen != StrategyTracepoint {
			t.Errorf("%s: chose %q, want tracepoint", r.Hook, r.Chosen)
		}
		for _, a := range r.Attempts {
			if a.Strategy != StrategyTracepoint && (a.Err == nil || !strings.Contains(a.Err.Error(), "disabled")) {
				t.Errorf("%s: skipped strategy %s: %v", r.Hook, a.Strategy, a.Err)
			}
		}
	}
}

func TestAllSkippedIsNoStrategy(t *testing.T) {
	testenv.RequireRoot(t)
	skip := map[string]bool{StrategyFentry: true, StrategyKprobe: true, StrategyTracepoint: true}
	if _, err := Open(Options{Skip: skip}); !errors.Is(err, attach.ErrNoStrategy) {
		t.Fatalf("Open with every strategy skipped: %v, want ErrNoStrategy", err)
	}
}

// Every better strategy that fails here says why; a kernel without kprobes
// is named as such.
func TestReportsNameReasons(t *testing.T) {
	p := open(t, Options{})
	_, noKprobePMU := os.Stat("/sys/bus/event_source/devices/kprobe")
	for _, r := range p.Reports() {
		t.Log(r.String())
		if r.Chosen == "" || r.Attempts[len(r.Attempts)-1].Strategy != r.Chosen {
			t.Fatalf("report %+v", r)
		}
		for _, a := range r.Attempts[:len(r.Attempts)-1] {
			if a.Err == nil || a.Err.Error() == "" {
				t.Errorf("%s: %s failed without a reason", r.Hook, a.Strategy)
			}
			if a.Strategy == StrategyKprobe && noKprobePMU != nil && !strings.Contains(a.Err.Error(), "CONFIG_KPROBES") {
				t.Errorf("%s: kprobe reason %q does not name the missing kernel option", r.Hook, a.Err)
			}
		}
	}
	if len(p.Stats()) == 0 || p.StartTime().IsZero() || time.Since(p.StartTime()) > time.Minute {
		t.Fatalf("stats %v, start time %v", p.Stats(), p.StartTime())
	}
}

func TestStrategyOrderIsTheRegistrys(t *testing.T) {
	for _, h := range hooks() {
		var names []string
		for _, s := range h.strategies {
			names = append(names, s.name)
		}
		testenv.RequireOrder(t, h.name, names)
	}
}
