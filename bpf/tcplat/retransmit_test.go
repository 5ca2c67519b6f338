package tcplat

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/internal/testenv"

	"golang.org/x/sys/unix"
)

// netns creates a named network namespace with lo up and removes it when the
// test ends.
func netns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("vigil-tcplat-%d", os.Getpid())
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
	return name
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", args, err, out)
	}
}

// inNetns runs f on a thread moved into the namespace; sockets created by f
// stay in it afterwards.
func inNetns(t *testing.T, name string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatalf("entering netns %s: %v", name, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			panic(fmt.Sprintf("returning from netns %s: %v", name, err)) // the thread must not be reused
		}
	}()
	f()
}

// The test network has no netem here (sch_netem is not built into this
// kernel), so segments are lost by taking the namespace's loopback down
// under an established connection: every send fails, and TCP retransmits on
// its timer.
func TestRetransmitsCountedWhenSegmentsAreLost(t *testing.T) {
	testenv.RequireRoot(t)
	ns := netns(t)
	var client net.Conn
	var pt uint16
	inNetns(t, ns, func() {
		ln := listen(t)
		pt = port(ln)
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		client = c
	})
	defer client.Close()
	p := open(t, Options{Port: pt})
	before := retransmits(t, p)
	run(t, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "down")
	if _, err := client.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	// The first retransmission comes after the minimum RTO (200 ms).
	deadline := time.Now().Add(5 * time.Second)
	for retransmits(t, p) == before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := retransmits(t, p) - before; got == 0 {
		t.Fatal("no retransmission counted for a segment sent over a downed link")
	} else {
		t.Logf("%d retransmissions counted", got)
	}
}

func retransmits(t *testing.T, p *Program) uint64 {
	t.Helper()
	r := reading(t, p, MetricRetransmits)
	if len(r.Counters) != 1 || r.Unit != "{segment}" {
		t.Fatalf("retransmits reading %+v", r)
	}
	return r.Counters[0].Value
}
