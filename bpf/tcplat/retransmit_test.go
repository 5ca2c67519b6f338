package tcplat

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"
	"golang.org/x/sys/unix"
)

// netNS is a private network namespace held by one OS thread; functions
// passed to run execute on that thread, and sockets they create stay in the
// namespace.
type netNS struct{ do chan func() }

func newNetNS(t *testing.T) *netNS {
	t.Helper()
	n := &netNS{do: make(chan func())}
	errc := make(chan error)
	go func() {
		// Never unlocked: when this goroutine ends its thread ends too, so
		// no other goroutine ever runs inside the namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for f := range n.do {
			f()
		}
	}()
	if err := <-errc; err != nil {
		t.Fatalf("creating a network namespace: %v", err)
	}
	t.Cleanup(func() { close(n.do) })
	return n
}

func (n *netNS) run(f func()) {
	done := make(chan struct{})
	n.do <- func() { defer close(done); f() }
	<-done
}

// setUp brings a link of the namespace up or down (ioctl, so the test needs
// no ip command).
func (n *netNS) setUp(t *testing.T, link string, up bool) {
	t.Helper()
	var err error
	n.run(func() { err = setLinkUp(link, up) })
	if err != nil {
		t.Fatalf("setting %s up=%v: %v", link, up, err)
	}
}

func setLinkUp(link string, up bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(link)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	flags := ifr.Uint16() &^ unix.IFF_UP
	if up {
		flags |= unix.IFF_UP
	}
	ifr.SetUint16(flags)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// This kernel has no netem (sch_netem is not built in), so segments are
// lost by taking a private namespace's loopback down under an established
// connection: every send fails, and TCP retransmits on its timer.
func TestRetransmitsCountedWhenSegmentsAreLost(t *testing.T) {
	testenv.RequireRoot(t)
	ns := newNetNS(t)
	ns.setUp(t, "lo", true)
	var ln *net.TCPListener
	var client net.Conn
	var err error
	ns.run(func() {
		ln = listen(t, "tcp4")
		client, err = net.Dial("tcp4", ln.Addr().String())
	})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	p := open(t, Options{Port: port(ln)})
	before := retransmits(t, p)
	ns.setUp(t, "lo", false)
	if _, err := client.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	// The first retransmission comes after the minimum RTO (200 ms).
	deadline := time.Now().Add(5 * time.Second)
	for retransmits(t, p) == before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	got := retransmits(t, p) - before
	if got == 0 {
		t.Fatal("no retransmission counted for a segment sent over a downed link")
	}
	t.Logf("%d retransmissions counted", got)
}

func retransmits(t *testing.T, p *Program) uint64 {
	t.Helper()
	r := reading(t, p, MetricRetransmits)
	if len(r.Counters) != 1 || r.Unit != "{segment}" {
		t.Fatalf("retransmits reading %+v", r)
	}
	return r.Counters[0].Value
}
