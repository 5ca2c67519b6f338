package profilesink

import (
	"io"
	"path/filepath"
	"testing"
	"time"
)

// One batch goes to every sink, each sending from its own goroutine while
// the agent keeps reading it; run with -race this shows the sinks only read
// what they share (pprof's encoder guards its own scratch fields).
func TestSinksShareOneBatchSafely(t *testing.T) {
	srv := startPushServer(t, "", "")
	py, err := NewPyroscope(PyroscopeConfig{URL: srv.url, API: PyroscopePush})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := NewDirectory(DirectoryConfig{Path: filepath.Join(t.TempDir(), "p"), MaxFiles: 100, MaxBytes: 1 << 30}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var queues []*Queued
	for _, s := range []Sink{py, dir, &fakeSink{}} {
		cfg := fastRetry
		cfg.MaxBatches = 8 // room for all five: this test is about sharing, not dropping
		queues = append(queues, newTestQueue(t, s, cfg))
	}
	for i := range 5 {
		batch := []Profile{testProfile(t, "a", testStart.Add(time.Duration(i)*time.Minute), 20), testProfile(t, "b", testStart, 20)}
		for _, q := range queues {
			q.Offer(batch)
		}
		for _, p := range batch { // what the web store does with its copy
			if err := p.Pprof.Write(io.Discard); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, q := range queues {
		eventually(t, "every sink sent everything", func() bool { return q.Counters().Sent == 10 })
	}
}
