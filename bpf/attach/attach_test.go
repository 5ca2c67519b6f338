package attach

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFirstTakesTheFirstThatWorksAndKeepsReasons(t *testing.T) {
	var tried []string
	try := func(name string, err error) Strategy {
		return Strategy{Name: name, Try: func() error { tried = append(tried, name); return err }}
	}
	r, err := First("read", []Strategy{
		try("fentry", errors.New("not here")),
		try("kprobe", nil),
		try("tracepoint", nil),
	}, nil)
	if err != nil || r.Chosen != "kprobe" {
		t.Fatalf("chosen %q, err %v", r.Chosen, err)
	}
	if strings.Join(tried, ",") != "fentry,kprobe" {
		t.Errorf("tried %v: must stop at the first that works", tried)
	}
	if got := r.String(); got != "read: kprobe (fentry: not here)" {
		t.Errorf("report %q", got)
	}
}

func TestFirstSkipsAndFailsWithEveryReason(t *testing.T) {
	r, err := First("tcp", []Strategy{
		{Name: "fentry", Try: func() error { t.Fatal("a skipped strategy ran"); return nil }},
		{Name: "tracepoint", Try: func() error { return errors.New("no such event") }},
	}, map[string]bool{"fentry": true})
	if !errors.Is(err, ErrNoStrategy) || r.Chosen != "" {
		t.Fatalf("err %v, chosen %q", err, r.Chosen)
	}
	for _, want := range []string{"fentry: disabled by configuration", "tracepoint: no such event"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// The eBPF library words EPERM as a memlock problem; vigil says what it
// more likely is, and keeps the original for errors.Is.
func TestPermissionRefusalIsExplained(t *testing.T) {
	orig := fmt.Errorf("load program: %w (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", unix.EPERM)
	r, _ := First("read", []Strategy{{Name: "fentry", Try: func() error { return orig }}}, nil)
	got := r.Attempts[0].Err
	if strings.Contains(got.Error(), "MEMLOCK may be too low") || !strings.Contains(got.Error(), "operation not permitted") {
		t.Errorf("reason %q", got)
	}
	if !errors.Is(got, unix.EPERM) || !errors.Is(got, orig) {
		t.Errorf("the original error is lost: %v", got)
	}
}
