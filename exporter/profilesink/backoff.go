package profilesink

import (
	"math/rand/v2"
	"time"
)

// backoff doubles the wait after every failure up to max and resets on
// success. Each wait is drawn from [d/2, d] so that many agents whose
// backend came back at the same moment do not retry in lockstep.
type backoff struct {
	initial, max time.Duration
	attempt      int
}

func (b *backoff) next() time.Duration {
	d := b.initial
	for i := 0; i < b.attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.attempt++
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}

func (b *backoff) reset() { b.attempt = 0 }
