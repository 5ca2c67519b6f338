package web

import (
	"sync"
	"time"
)

// flameCacheSize bounds the cached trees: a few open tabs with different
// filters.
const flameCacheSize = 8

// flameCache keeps recent flame trees. The page asks every few seconds but
// the store changes once per profile interval, and an hour of profiles is
// the most expensive thing the view computes, so equal questions about an
// unchanged store are answered from here.
type flameCache struct {
	mu sync.Mutex
	m  map[flameKey]*FlameNode
}

// flameKey identifies a selection: within one store generation the window
// keeps the newest profiles of a service, so their count and end times
// pin down exactly which ones they are.
type flameKey struct {
	kind        string
	service     string
	gen         uint64
	n           int
	first, last time.Time
}

func keyOf(kind, service string, gen uint64, entries []entry) flameKey {
	k := flameKey{kind: kind, service: service, gen: gen, n: len(entries)}
	if len(entries) > 0 {
		k.first, k.last = entries[0].p.End, entries[len(entries)-1].p.End
	}
	return k
}

// get returns the tree for the selection, building it on a miss.
func (c *flameCache) get(k flameKey, entries []entry) *FlameNode {
	c.mu.Lock()
	if t, ok := c.m[k]; ok {
		c.mu.Unlock()
		return t
	}
	c.mu.Unlock()
	t := buildFlame(entries)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= flameCacheSize {
		c.m = map[flameKey]*FlameNode{}
	}
	c.m[k] = t
	return t
}
