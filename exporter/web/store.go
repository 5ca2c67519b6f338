package web

import (
	"errors"
	"sync"
	"time"
)

// Defaults for zero Options fields: the hour the issue asks for, and a
// memory bound that keeps the agent well under its 100 MB target.
const (
	DefaultRetention = time.Hour
	DefaultMaxBytes  = 64 << 20
)

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("web store closed")

// Options bound what the Store keeps. Zero or negative fields take the
// defaults.
type Options struct {
	Retention time.Duration // profiles and histogram points older than this are dropped
	MaxBytes  int64         // memory of the retained profiles (kept encoded) and their entries; the oldest go first
}

// Store keeps the recent profiles, histogram readings and self counters for
// the web view. It is safe for concurrent use.
type Store struct {
	opts Options
	now  func() time.Time // the clock that ages data out; tests move it

	mu       sync.Mutex
	closed   bool
	profiles []entry // oldest first
	gen      uint64  // changes whenever profiles does
	bytes    int64
	evicted  evictions
	hists    histStore
	self     selfState
}

// evictions counts the profiles the store let go, by reason.
type evictions struct {
	age, bytes, invalid uint64
}

// NewStore returns an empty store bounded by o.
func NewStore(o Options) *Store {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return &Store{opts: o, now: time.Now, hists: newHistStore()}
}

// cutoff is the oldest instant still inside the retention window.
func (s *Store) cutoff() time.Time {
	return s.now().Add(-s.opts.Retention)
}
