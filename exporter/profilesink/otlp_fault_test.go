package profilesink

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/exporter/backendtest"
	"go.opentelemetry.io/collector/pdata/pprofile"
	"google.golang.org/grpc"
)

// proxy forwards a fixed loopback port to target once started, so a test
// can make a real Collector unreachable and reachable again on the same
// address.
type proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
}

func (p *proxy) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *proxy) pipe(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		io.Copy(up, c)
		up.Close() // the client hung up: let the Collector see it and stop promptly
	}()
	io.Copy(c, up)
}

func TestQueuedOTLPDeliversOnceTheCollectorIsReachable(t *testing.T) {
	c := backendtest.StartCollector(t)
	px := &proxy{addr: refusedAddr(t), target: c.GRPCAddr}
	o, err := NewOTLP(OTLPConfig{Endpoint: "http://" + px.addr, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	q := newTestQueue(t, o, fastRetry)
	q.Offer([]Profile{testProfile(t, "late", testStart, 0)})
	eventually(t, "failed attempts while nothing listens", func() bool { return q.Counters().Failures >= 3 })
	if c := q.Counters(); !strings.Contains(c.LastError, px.addr) || c.Sent != 0 {
		t.Fatalf("while unreachable: %+v", c)
	}
	px.start(t)
	eventually(t, "delivery through the proxy", func() bool { return q.Counters().Sent == 1 })
	c.WaitProfiles(t, 10*time.Second, func(pds []pprofile.Profiles) bool {
		return findSample(readSamples(t, pds), "late", "cpu/nanoseconds", "hot_loop") != nil
	})
	if c := q.Counters(); c.Dropped != 0 || c.QueueDepth != 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestOTLPReceiverWithoutProfilesIsAPermanentFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer() // no services: what a Collector without a profiles pipeline answers
	go gs.Serve(ln)
	defer gs.Stop()
	hs := httptest.NewServer(http.NotFoundHandler())
	defer hs.Close()
	for _, cfg := range []OTLPConfig{
		{Endpoint: "http://" + ln.Addr().String(), Protocol: ProtocolGRPC},
		{Endpoint: hs.URL, Protocol: ProtocolHTTPProtobuf},
	} {
		o, err := NewOTLP(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = o.Send(context.Background(), []Profile{testProfile(t, "api", testStart, 0)})
		if !IsPermanent(err) || !strings.Contains(err.Error(), "profilesSupport") {
			t.Errorf("%s: %v, want a permanent error that names the feature gate", cfg.Protocol, err)
		}
		o.Close()
	}
}
