package cpuprofile

import "sync"

// worker runs queued jobs one at a time on its own goroutine: the process
// registry and the table builder each have one, so neither blocks the
// ring-buffer reader and each costs at most one core.
type worker[T any] struct {
	mu   sync.Mutex
	jobs []T
	busy sync.WaitGroup // queued or running jobs
	wake chan struct{}
	done chan struct{}
	gone chan struct{} // closed when the goroutine has returned
}

// start runs do for each job until stop; jobs left at stop go to drop.
func (w *worker[T]) start(do, drop func(T)) {
	w.wake, w.done, w.gone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(w.gone)
		for {
			select {
			case <-w.done:
				for _, j := range w.takeAll() {
					drop(j)
					w.busy.Done()
				}
				return
			case <-w.wake:
			}
			for !w.stopped() {
				j, ok := w.next()
				if !ok {
					break
				}
				do(j)
				w.busy.Done()
			}
		}
	}()
}

func (w *worker[T]) stopped() bool {
	select {
	case <-w.done:
		// Leave the rest to the drop at the top of the loop.
		select {
		case w.wake <- struct{}{}:
		default:
		}
		return true
	default:
		return false
	}
}

// push queues j unless queued says it is already waiting; it never blocks.
func (w *worker[T]) push(j T, queued func([]T) bool) {
	w.mu.Lock()
	if queued != nil && queued(w.jobs) {
		w.mu.Unlock()
		return
	}
	w.jobs = append(w.jobs, j)
	w.busy.Add(1)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker[T]) next() (T, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var zero T
	if len(w.jobs) == 0 {
		return zero, false
	}
	j := w.jobs[0]
	w.jobs[0] = zero
	w.jobs = w.jobs[1:]
	return j, true
}

func (w *worker[T]) takeAll() []T {
	w.mu.Lock()
	defer w.mu.Unlock()
	all := w.jobs
	w.jobs = nil
	return all
}

// wait blocks until every job queued so far is done.
func (w *worker[T]) wait() { w.busy.Wait() }

// stop ends the worker once the job it is running returns; jobs still
// queued are dropped. The caller may then close what the jobs use.
func (w *worker[T]) stop() {
	close(w.done)
	<-w.gone
}
