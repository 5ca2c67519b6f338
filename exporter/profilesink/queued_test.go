package profilesink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSink records delivered batches; it can fail, fail permanently, or
// hold every Send until released.
type fakeSink struct {
	fail      atomic.Bool
	permanent atomic.Bool
	gate      chan struct{} // when non-nil, Send waits for a value (or ctx)
	entered   chan string   // when non-nil, Send reports the batch it starts

	mu     sync.Mutex
	got    []string // service of each delivered batch's first profile
	calls  int
	closed bool
}

func (f *fakeSink) Name() string { return "fake" }

func (f *fakeSink) Send(ctx context.Context, batch []Profile) error {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if f.entered != nil {
		f.entered <- batch[0].Service
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.fail.Load() {
		err := errors.New("backend down")
		if f.permanent.Load() {
			return Permanent(err)
		}
		return err
	}
	f.mu.Lock()
	f.got = append(f.got, batch[0].Service)
	f.mu.Unlock()
	return nil
}

func (f *fakeSink) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

func (f *fakeSink) delivered() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func batchOf(name string, n int) []Profile {
	b := make([]Profile, n)
	for i := range b {
		b[i] = Profile{Service: name}
	}
	return b
}

var fastRetry = QueueConfig{MaxBatches: 4, RetryInitial: time.Millisecond, RetryMax: 4 * time.Millisecond, MaxAge: time.Hour}

func newTestQueue(t *testing.T, s Sink, cfg QueueConfig) *Queued {
	t.Helper()
	q, err := NewQueued(s, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_ = q.Close(ctx)
	})
	return q
}

// eventually polls cond; a hang shows as a failure naming what was awaited.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestQueuedOfferNeverBlocksOnAStuckSink(t *testing.T) {
	s := &fakeSink{gate: make(chan struct{})} // never released: Send hangs until Close
	q := newTestQueue(t, s, fastRetry)
	done := make(chan struct{})
	go func() {
		for i := range 1000 {
			q.Offer(batchOf(fmt.Sprint("b", i), 2))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Offer blocked behind a stuck sink")
	}
	c := q.Counters()
	if c.QueueDepth > fastRetry.MaxBatches {
		t.Errorf("queue depth %d exceeds max_batches %d", c.QueueDepth, fastRetry.MaxBatches)
	}
	if want := uint64(2 * (1000 - fastRetry.MaxBatches)); c.Dropped != want || c.DroppedFull != want {
		t.Errorf("dropped %d (full %d), want %d", c.Dropped, c.DroppedFull, want)
	}
}

func TestQueuedDropsOldestFirstAndKeepsOrder(t *testing.T) {
	s := &fakeSink{gate: make(chan struct{}), entered: make(chan string, 100)}
	cfg := fastRetry
	cfg.MaxBatches = 3
	q := newTestQueue(t, s, cfg)
	q.Offer(batchOf("b0", 1))
	if got := <-s.entered; got != "b0" {
		t.Fatalf("first send is %s, want b0", got)
	}
	for i := 1; i <= 6; i++ {
		q.Offer(batchOf(fmt.Sprint("b", i), 1))
	}
	// b0 is inside Send and stays; b1..b4 made room for b5, b6.
	if c := q.Counters(); c.DroppedFull != 4 || c.QueueDepth != 3 {
		t.Fatalf("counters %+v, want 4 dropped for room and depth 3", c)
	}
	close(s.gate)
	eventually(t, "three deliveries", func() bool { return len(s.delivered()) == 3 })
	if got := strings.Join(s.delivered(), ","); got != "b0,b5,b6" {
		t.Errorf("delivered %s, want b0,b5,b6", got)
	}
	if c := q.Counters(); c.Sent != 3 || c.QueueDepth != 0 {
		t.Errorf("counters %+v, want 3 sent, empty queue", c)
	}
}

func TestQueuedRecoversWhenTheSinkComesBack(t *testing.T) {
	s := &fakeSink{}
	s.fail.Store(true)
	q := newTestQueue(t, s, fastRetry)
	q.Offer(batchOf("a", 3))
	q.Offer(batchOf("b", 2))
	eventually(t, "retries", func() bool { return q.Counters().Failures >= 3 })
	if c := q.Counters(); c.Sent != 0 || c.QueueDepth != 2 || !strings.Contains(c.LastError, "backend down") {
		t.Fatalf("while down: %+v", c)
	}
	s.fail.Store(false)
	eventually(t, "delivery after recovery", func() bool { return q.Counters().Sent == 5 })
	if got := strings.Join(s.delivered(), ","); got != "a,b" {
		t.Errorf("delivered %s, want a,b", got)
	}
	if c := q.Counters(); c.Dropped != 0 {
		t.Errorf("dropped %d while the queue had room", c.Dropped)
	}
}

func TestQueuedDropsBatchesOlderThanMaxAge(t *testing.T) {
	s := &fakeSink{}
	s.fail.Store(true)
	cfg := fastRetry
	cfg.MaxAge = time.Minute
	q, err := NewQueued(s, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	q.mu.Lock()
	q.now = func() time.Time { return time.Unix(0, now.Load()) }
	q.mu.Unlock()
	defer q.Close(context.Background())

	q.Offer(batchOf("old", 4))
	eventually(t, "a failed attempt", func() bool { return q.Counters().Failures >= 1 })
	now.Add(int64(2 * time.Minute))
	eventually(t, "the expiry", func() bool { return q.Counters().DroppedExpired == 4 })
	if c := q.Counters(); c.Dropped != 4 || c.QueueDepth != 0 {
		t.Errorf("counters %+v, want 4 dropped and an empty queue", c)
	}
}

func TestQueuedDropsRejectedBatchesWithoutRetry(t *testing.T) {
	s := &fakeSink{}
	s.fail.Store(true)
	s.permanent.Store(true)
	q := newTestQueue(t, s, fastRetry)
	q.Offer(batchOf("bad", 2))
	eventually(t, "the rejection", func() bool { return q.Counters().DroppedRejected == 2 })
	s.fail.Store(false)
	q.Offer(batchOf("good", 1))
	eventually(t, "the next batch", func() bool { return q.Counters().Sent == 1 })
	if c := q.Counters(); c.Failures != 1 {
		t.Errorf("failures %d, want exactly 1 (no retry of a rejected batch)", c.Failures)
	}
}

func TestQueuedCloseFlushesEverything(t *testing.T) {
	s := &fakeSink{}
	s.fail.Store(true) // nothing leaves before Close
	q, err := NewQueued(s, fastRetry, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		q.Offer(batchOf(fmt.Sprint("b", i), 1))
	}
	eventually(t, "a failed attempt", func() bool { return q.Counters().Failures >= 1 })
	s.fail.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := strings.Join(s.delivered(), ","); got != "b0,b1,b2,b3" {
		t.Errorf("flushed %s, want b0,b1,b2,b3", got)
	}
	if !s.closed {
		t.Error("the wrapped sink was not closed")
	}
	q.Offer(batchOf("late", 2))
	if c := q.Counters(); c.Sent != 4 || c.DroppedShutdown != 2 {
		t.Errorf("counters %+v, want 4 sent and the late batch dropped", c)
	}
}

func TestQueuedCloseGivesUpAtTheDeadline(t *testing.T) {
	s := &fakeSink{gate: make(chan struct{})} // hangs until the context ends
	q, err := NewQueued(s, fastRetry, nil)
	if err != nil {
		t.Fatal(err)
	}
	q.Offer(batchOf("a", 2))
	q.Offer(batchOf("b", 3))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = q.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "dropped 5 unsent profiles") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close error %v, want 5 dropped at the deadline", err)
	}
	if c := q.Counters(); c.DroppedShutdown != 5 || c.QueueDepth != 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestQueueConfigRejectsNonsense(t *testing.T) {
	_, err := NewQueued(&fakeSink{}, QueueConfig{MaxBatches: 0, RetryInitial: time.Second, RetryMax: time.Millisecond}, nil)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"sink fake", "max_batches", "retry_initial", "max_age"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestBackoffGrowsWithJitterUpToMax(t *testing.T) {
	b := backoff{initial: 100 * time.Millisecond, max: time.Second}
	wantMax := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, m := range wantMax {
		m *= time.Millisecond
		d := b.next()
		if d < m/2 || d > m {
			t.Errorf("attempt %d: wait %v outside [%v, %v]", i, d, m/2, m)
		}
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Errorf("after reset: %v", d)
	}
}
