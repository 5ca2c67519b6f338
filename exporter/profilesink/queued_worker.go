package profilesink

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// run is the sending goroutine: oldest batch first, retried with backoff
// until it is sent, rejected, too old or pushed out by newer ones.
func (q *Queued) run() {
	defer close(q.done)
	b := backoff{initial: q.cfg.RetryInitial, max: q.cfg.RetryMax}
	for {
		e := q.next()
		if e == nil {
			return
		}
		if q.send(e) {
			b.reset()
			continue
		}
		if !q.sleep(b.next()) {
			return
		}
	}
}

// next waits for the oldest live batch and marks it as being sent. It
// returns nil when the queue is closed and empty, or sending was aborted.
func (q *Queued) next() *entry {
	for {
		q.mu.Lock()
		q.dropExpired(q.now())
		if len(q.queue) > 0 {
			e := q.queue[0]
			e.sending = true
			q.mu.Unlock()
			return e
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil
		}
		select {
		case <-q.wake:
		case <-q.ctx.Done():
			return nil
		}
	}
}

// send delivers e once and books the outcome; it reports success.
func (q *Queued) send(e *entry) bool {
	err := q.sink.Send(q.ctx, e.batch)
	q.mu.Lock()
	defer q.mu.Unlock()
	e.sending = false
	if err == nil {
		q.remove(e)
		q.counters.Sent += uint64(len(e.batch))
		if q.failing {
			q.failing = false
			q.log.Info("sink recovered", "queued_batches", len(q.queue))
		}
		return true
	}
	q.counters.Failures++
	q.counters.LastError = err.Error()
	if IsPermanent(err) {
		q.remove(e)
		n := rejectedOf(err, len(e.batch))
		q.counters.Sent += uint64(len(e.batch) - n)
		q.drop(&q.counters.DroppedRejected, n)
	}
	if !q.failing {
		q.failing = true
		q.log.Warn("sink failing, retrying with backoff", "err", err, "permanent", IsPermanent(err))
	}
	return false
}

// sleep waits d, or less if sending is aborted (then it reports false). A
// new batch does not cut the wait short: the backend is what we wait for.
func (q *Queued) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-q.ctx.Done():
		return false
	}
}

// Close stops taking batches, keeps sending what is queued until the queue
// is empty or ctx is done (the final flush on shutdown), counts what is left
// as dropped, and closes the wrapped sink. It reports the profiles it had to
// drop, and the sink's Close error.
func (q *Queued) Close(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	q.signal()

	var deadline error
	select {
	case <-q.done:
	case <-ctx.Done():
		deadline = ctx.Err()
		q.cancel()
		<-q.done
	}
	q.cancel()
	var errs []error
	if n := q.dropRemaining(); n > 0 {
		if deadline == nil {
			deadline = errors.New("sending aborted")
		}
		errs = append(errs, fmt.Errorf("sink %s: dropped %d unsent profiles at shutdown: %w", q.Name(), n, deadline))
	}
	if err := q.sink.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing sink %s: %w", q.Name(), err))
	}
	return errors.Join(errs...)
}

func (q *Queued) dropRemaining() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, e := range q.queue {
		n += len(e.batch)
	}
	q.drop(&q.counters.DroppedShutdown, n)
	clear(q.queue)
	q.queue = nil
	return n
}
