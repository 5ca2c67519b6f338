package web

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vigil-ebpf/vigil/exporter/profilesink"
)

// entry is one retained profile with what the views need without walking
// it again. The profile itself is kept encoded (gzipped pprof, about a
// tenth of the memory of the decoded one) and decoded when a view reads
// it: an agent retains an hour of profiles and views them rarely.
type entry struct {
	p     profilesink.Profile // its Pprof is nil: the profile is raw
	raw   []byte              // the profile, gzipped pprof
	kind  string              // profilesink.KindCPU or KindOffCPU
	size  int64               // memory held: the encoded profile and the entry
	value int64               // what the views weigh: samples (CPU) or nanoseconds blocked (off-CPU)
}

func newEntry(p profilesink.Profile) (entry, error) {
	var buf bytes.Buffer
	if err := p.Pprof.Write(&buf); err != nil {
		return entry{}, err
	}
	e := entry{kind: p.Kind(), value: countSamples(p.Pprof), raw: buf.Bytes()}
	e.p = p // a copy: the caller's profile is not changed
	e.p.Pprof = nil
	e.size = int64(len(e.raw)) + entrySize(&e)
	return e, nil
}

// profile decodes the retained profile; each call returns a new one.
func (e *entry) profile() (*profile.Profile, error) {
	return profile.ParseData(e.raw)
}

// ofKind keeps the entries of one kind.
func ofKind(entries []entry, kind string) []entry {
	out := entries[:0:0]
	for _, e := range entries {
		if e.kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// Name names the sink in logs and counters.
func (s *Store) Name() string { return "web" }

// Send retains the batch, then drops profiles older than the retention and,
// oldest first, as many as needed to stay under MaxBytes. It never blocks
// on anything but the store's lock. The profiles are only read, never
// changed, so the agent may hand the same batch to other sinks; they are
// kept as given (pprof and attribute maps included), so nobody may change
// them after Send.
func (s *Store) Send(ctx context.Context, batch []profilesink.Profile) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("web store: %w", err)
	}
	entries := make([]entry, 0, len(batch))
	var invalid uint64
	for _, p := range batch {
		if p.Pprof == nil {
			invalid++
			continue
		}
		e, err := newEntry(p)
		if err != nil {
			invalid++
			continue
		}
		entries = append(entries, e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.evicted.invalid += invalid
	for _, e := range entries {
		s.profiles = append(s.profiles, e)
		s.bytes += e.size
	}
	s.gen++
	s.pruneProfiles()
	return nil
}

// Close releases everything retained. Reads keep working on an empty
// store, so a page that is still open sees no data rather than errors.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.profiles, s.bytes = nil, 0
	s.gen++
	s.hists = newHistStore()
	return nil
}

// pruneProfiles drops what is too old, then the oldest until the estimate
// fits. A profile that alone exceeds MaxBytes is dropped too: the bound
// holds whatever arrives. Called with s.mu held.
func (s *Store) pruneProfiles() {
	cut := s.cutoff()
	n := 0
	for n < len(s.profiles) && s.profiles[n].p.End.Before(cut) {
		s.bytes -= s.profiles[n].size
		s.evicted.age++
		n++
	}
	for n < len(s.profiles) && s.bytes > s.opts.MaxBytes {
		s.bytes -= s.profiles[n].size
		s.evicted.bytes++
		n++
	}
	if n > 0 {
		s.gen++
		// Copy down so the backing array doesn't keep evicted profiles alive.
		s.profiles = append(s.profiles[:0:0], s.profiles[n:]...)
	}
}

// window returns the retained profiles that end after since and belong to
// service (all services when empty), oldest first.
func (s *Store) window(service string, since time.Time) []entry {
	out, _ := s.windowGen(service, since)
	return out
}

// windowGen is window with the store's generation, which identifies the
// retained set: equal generations and equal selections mean equal results.
func (s *Store) windowGen(service string, since time.Time) ([]entry, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneProfiles()
	var out []entry
	for _, e := range s.profiles {
		if e.p.End.After(since) && (service == "" || e.p.Service == service) {
			out = append(out, e)
		}
	}
	return out, s.gen
}
