package tcplat

import (
	"io"
	"net"
	"testing"

	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
)

// BenchmarkLoopbackConnect drives the connect and RTT programs with
// loopback connects that exchange one message each.
func BenchmarkLoopbackConnect(b *testing.B) {
	ln := listen(b, "tcp4")
	p := open(b, Options{})
	testenv.EnableStats(b)
	addr := ln.Addr().String()
	buf := make([]byte, 4)
	before := p.Stats()
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Write([]byte("ping"))
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.StopTimer()
	testenv.ReportRunCost(b, before, p.Stats())
}

// BenchmarkRead is the cost of one collection: both histograms and the
// counters, summed over CPUs.
func BenchmarkRead(b *testing.B) {
	p := open(b, Options{})
	for range b.N {
		if _, err := p.Read(); err != nil {
			b.Fatal(err)
		}
	}
}
