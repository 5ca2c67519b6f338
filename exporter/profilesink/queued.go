package profilesink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// QueueConfig bounds a Queued sink (the sinks.queue configuration keys).
type QueueConfig struct {
	MaxBatches   int           // batches held at most; the oldest is dropped to make room
	RetryInitial time.Duration // first wait after a failed Send
	RetryMax     time.Duration // the wait doubles up to this
	MaxAge       time.Duration // a batch queued longer than this is dropped, not retried
}

// DefaultQueueConfig matches the documented defaults of sinks.queue.
var DefaultQueueConfig = QueueConfig{MaxBatches: 16, RetryInitial: time.Second, RetryMax: 30 * time.Second, MaxAge: 5 * time.Minute}

func (c QueueConfig) validate() error {
	var errs []error
	if c.MaxBatches < 1 {
		errs = append(errs, fmt.Errorf("max_batches must be at least 1 (got %d)", c.MaxBatches))
	}
	if c.RetryInitial <= 0 || c.RetryMax < c.RetryInitial {
		errs = append(errs, fmt.Errorf("retry_initial must be positive and at most retry_max (got %v, %v)", c.RetryInitial, c.RetryMax))
	}
	if c.MaxAge <= 0 {
		errs = append(errs, fmt.Errorf("max_age must be positive (got %v)", c.MaxAge))
	}
	return errors.Join(errs...)
}

// Queued puts a bounded queue and one sending goroutine in front of a Sink,
// so the agent hands over each interval's profiles without ever waiting for
// the backend. Memory is bounded by construction: at most MaxBatches batches
// are held (one more only while MaxBatches is 1 and that one is in a Send
// call), and each batch is what one interval produced.
type Queued struct {
	sink Sink
	cfg  QueueConfig
	log  *slog.Logger
	now  func() time.Time

	mu       sync.Mutex
	queue    []*entry // oldest first
	counters Counters
	closed   bool
	failing  bool // the last Send failed: log only the transitions

	wake   chan struct{} // capacity 1: "the queue or closed changed"
	ctx    context.Context
	cancel context.CancelFunc // aborts sending once Close's deadline passes
	done   chan struct{}
}

type entry struct {
	batch   []Profile
	added   time.Time
	sending bool // inside sink.Send: Offer must not drop it from under the worker
}

// NewQueued starts the sending goroutine for sink. Close stops it.
func NewQueued(sink Sink, cfg QueueConfig, log *slog.Logger) (*Queued, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("queue of sink %s: %w", sink.Name(), err)
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queued{
		sink: sink, cfg: cfg, now: time.Now,
		log:  log.With("component", "profilesink", "sink", sink.Name()),
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	go q.run()
	return q, nil
}

// Name is the wrapped sink's name.
func (q *Queued) Name() string { return q.sink.Name() }

// Offer queues batch and returns at once. When the queue is full the oldest
// waiting batch is dropped and counted. After Close, batch is counted as
// dropped. The queue keeps batch and the sink reads it later, so the caller
// must not change it afterwards (the same batch may go to every sink).
func (q *Queued) Offer(batch []Profile) {
	if len(batch) == 0 {
		return
	}
	q.mu.Lock()
	if q.closed {
		q.drop(&q.counters.DroppedShutdown, len(batch))
		q.mu.Unlock()
		return
	}
	q.dropExpired(q.now())
	q.queue = append(q.queue, &entry{batch: batch, added: q.now()})
	for len(q.queue) > q.cfg.MaxBatches {
		if !q.dropOldestIdle() {
			break // nothing idle: cannot happen with one sender and max >= 1
		}
	}
	q.mu.Unlock()
	q.signal()
}

// Counters returns a snapshot of what the queue did so far.
func (q *Queued) Counters() Counters {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.counters
	c.QueueDepth = len(q.queue)
	return c
}

func (q *Queued) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// drop counts n dropped profiles under reason; q.mu is held.
func (q *Queued) drop(reason *uint64, n int) {
	*reason += uint64(n)
	q.counters.Dropped += uint64(n)
}

// dropOldestIdle drops the oldest batch that is not being sent right now.
func (q *Queued) dropOldestIdle() bool {
	for i, e := range q.queue {
		if !e.sending {
			q.drop(&q.counters.DroppedFull, len(e.batch))
			q.queue = append(q.queue[:i], q.queue[i+1:]...)
			return true
		}
	}
	return false
}

// dropExpired drops every idle batch queued longer than MaxAge.
func (q *Queued) dropExpired(now time.Time) {
	kept := q.queue[:0]
	for _, e := range q.queue {
		if !e.sending && now.Sub(e.added) > q.cfg.MaxAge {
			q.drop(&q.counters.DroppedExpired, len(e.batch))
			continue
		}
		kept = append(kept, e)
	}
	clear(q.queue[len(kept):])
	q.queue = kept
}

func (q *Queued) remove(e *entry) {
	for i, x := range q.queue {
		if x == e {
			q.queue = append(q.queue[:i], q.queue[i+1:]...)
			return
		}
	}
}
