package profilesink

import (
	"context"
	"errors"
	"sync"
)

// Fanout hands each interval's batch to every configured sink, each behind
// its own queue, so one slow backend never delays another.
type Fanout []*Queued

// Offer gives batch to every queue; it never blocks.
func (f Fanout) Offer(batch []Profile) {
	for _, q := range f {
		q.Offer(batch)
	}
}

// Close flushes and closes every queue at the same time, so they share
// ctx's deadline instead of the first slow one using it all up.
func (f Fanout) Close(ctx context.Context) error {
	errs := make([]error, len(f))
	var wg sync.WaitGroup
	for i, q := range f {
		wg.Go(func() { errs[i] = q.Close(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Counters are every queue's counters by sink name.
func (f Fanout) Counters() map[string]Counters {
	out := make(map[string]Counters, len(f))
	for _, q := range f {
		out[q.Name()] = q.Counters()
	}
	return out
}
