package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/config"
	"github.com/vigil-ebpf/vigil/exporter/profilesink"
)

// syncBuffer is a bytes.Buffer the sinks' goroutines may log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A sink's log line names its component and sink once each.
func TestSinkLogLinesCarryEachAttributeOnce(t *testing.T) {
	var buf syncBuffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })

	cfg := config.Default()
	cfg.Sinks.Directory.Path = t.TempDir()
	a := newAgent(cfg, Options{})
	if err := a.openSinks(); err != nil {
		t.Fatal(err)
	}
	defer a.sinks.Close(context.Background())
	// A profile without pprof data is refused, which the queue logs.
	a.sinks.Offer([]profilesink.Profile{{Service: "x"}})
	line := waitForLine(t, &buf, "sink failing")
	for _, attr := range []string{"component=", "sink="} {
		if n := strings.Count(line, attr); n != 1 {
			t.Errorf("%q appears %d times in %q", attr, n, line)
		}
	}
	if !strings.Contains(line, "component=profilesink") {
		t.Errorf("line %q is not the sink's own", line)
	}
}

func waitForLine(t *testing.T, buf *syncBuffer, msg string) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, msg) {
				return l
			}
		}
	}
	t.Fatalf("no line %q in %q", msg, buf.String())
	return ""
}

// fakeSink records whether it was closed.
type fakeSink struct {
	name   string
	closed bool
}

func (f *fakeSink) Name() string                                      { return f.name }
func (f *fakeSink) Send(context.Context, []profilesink.Profile) error { return nil }
func (f *fakeSink) Close() error                                      { f.closed = true; return nil }

// When a sink can't be opened, the ones opened before it are closed.
func TestOpenEachClosesWhatItOpenedOnFailure(t *testing.T) {
	first, second := &fakeSink{name: "first"}, &fakeSink{name: "second"}
	boom := errors.New("boom")
	_, err := openEach([]sinkOpener{
		{"sinks.first", func() (profilesink.Sink, error) { return first, nil }},
		{"sinks.second", func() (profilesink.Sink, error) { return second, nil }},
		{"sinks.third", func() (profilesink.Sink, error) { return nil, boom }},
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "sinks.third") {
		t.Fatalf("err = %v, want boom naming sinks.third", err)
	}
	if !first.closed || !second.closed {
		t.Errorf("closed: first %v, second %v; want both", first.closed, second.closed)
	}
}

// When a queue can't be built, every sink is closed: the queued ones and
// the ones not yet queued.
func TestQueueEachClosesEverySinkOnFailure(t *testing.T) {
	a, b := &fakeSink{name: "a"}, &fakeSink{name: "b"}
	_, err := queueEach([]profilesink.Sink{a, b}, profilesink.QueueConfig{}, slog.Default())
	if err == nil {
		t.Fatal("an empty queue configuration was accepted")
	}
	if !a.closed || !b.closed {
		t.Errorf("closed: a %v, b %v; want both", a.closed, b.closed)
	}
}
