package profilesink

import (
	"context"
	"strings"
	"testing"
	"time"
)

type namedSink struct {
	*fakeSink
	name string
}

func (n namedSink) Name() string { return n.name }

func TestFanoutClosesSinksTogetherWithinOneDeadline(t *testing.T) {
	stuck := namedSink{&fakeSink{gate: make(chan struct{})}, "stuck"}
	healthy := namedSink{&fakeSink{}, "healthy"}
	healthy.fail.Store(true) // holds its batch until Close starts flushing
	var f Fanout
	for _, s := range []Sink{stuck, healthy} {
		q, err := NewQueued(s, fastRetry, nil)
		if err != nil {
			t.Fatal(err)
		}
		f = append(f, q)
	}
	f.Offer(batchOf("x", 2))
	eventually(t, "a failed attempt", func() bool { return f.Counters()["healthy"].Failures > 0 })
	healthy.fail.Store(false)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := f.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "sink stuck: dropped 2") || strings.Contains(err.Error(), "healthy") {
		t.Errorf("Close: %v, want only the stuck sink's drop", err)
	}
	c := f.Counters()
	if c["healthy"].Sent != 2 || c["stuck"].DroppedShutdown != 2 {
		t.Errorf("counters %+v", c)
	}
	if !stuck.closed || !healthy.closed {
		t.Error("a sink was not closed")
	}
}
