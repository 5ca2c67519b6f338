package web

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-ebpf/vigil/exporter/profilesink"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func services(entries []entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.p.Service)
	}
	return out
}

func TestStoreDropsProfilesOlderThanRetention(t *testing.T) {
	s, clock := newTestStore(Options{Retention: 10 * time.Minute}, t0)
	ctx := context.Background()
	for i := range 4 { // ends at t0, t0+5m, t0+10m, t0+15m
		end := t0.Add(time.Duration(i) * 5 * time.Minute)
		clock.t = end
		p := stackProfile(t, end, map[string]int64{"main;hot_alpha": 3})
		if err := s.Send(ctx, []profilesink.Profile{sinkProfile("p"+strconv.Itoa(i), end, p)}); err != nil {
			t.Fatal(err)
		}
	}
	// At t0+15m the cutoff is t0+5m: the profile ending at t0 is gone.
	if got := services(s.window("", time.Time{})); len(got) != 3 || got[0] != "p1" {
		t.Fatalf("retained %v, want p1..p3", got)
	}
	clock.t = t0.Add(24 * time.Minute) // cutoff t0+14m: only p3 remains
	if got := services(s.window("", time.Time{})); len(got) != 1 || got[0] != "p3" {
		t.Fatalf("retained %v, want [p3]", got)
	}
	s.mu.Lock()
	st := s.stats()
	s.mu.Unlock()
	if st.EvictedByAge != 3 || st.Profiles != 1 || st.EstimatedBytes != s.profiles[0].size {
		t.Fatalf("stats %+v: want 3 evicted by age, 1 profile and its bytes", st)
	}
}

func TestStoreDropsOldestBeyondMaxBytes(t *testing.T) {
	one := stackProfile(t, t0, map[string]int64{"main;work;hot_alpha": 5, "main;idle": 1})
	size := mustEntry(t, sinkProfile("p0", t0, one)).size
	s, _ := newTestStore(Options{MaxBytes: size*5/2 + 1}, t0.Add(time.Minute)) // room for two
	for i := range 5 {
		p := stackProfile(t, t0, map[string]int64{"main;work;hot_alpha": 5, "main;idle": 1})
		if err := s.Send(context.Background(), []profilesink.Profile{sinkProfile("p"+strconv.Itoa(i), t0, p)}); err != nil {
			t.Fatal(err)
		}
	}
	got := services(s.window("", time.Time{}))
	if len(got) != 2 || got[0] != "p3" || got[1] != "p4" {
		t.Fatalf("retained %v, want the newest two [p3 p4]", got)
	}
	if s.bytes > s.opts.MaxBytes || s.bytes != 2*size || s.evicted.bytes != 3 {
		t.Fatalf("bytes %d (max %d, one profile %d), evicted %d: want two profiles and 3 evicted", s.bytes, s.opts.MaxBytes, size, s.evicted.bytes)
	}

	// A profile bigger than the whole bound is not kept at all.
	big := map[string]int64{}
	for i := range 200 {
		big["main;f"+strconv.Itoa(i)] = 1
	}
	if err := s.Send(context.Background(), []profilesink.Profile{sinkProfile("big", t0, stackProfile(t, t0, big))}); err != nil {
		t.Fatal(err)
	}
	if got := services(s.window("", time.Time{})); len(got) != 0 || s.bytes != 0 {
		t.Fatalf("after an oversized profile: retained %v, %d bytes; want nothing (it evicts all and itself)", got, s.bytes)
	}
}

func TestStoreSendAfterCloseAndInvalid(t *testing.T) {
	s := NewStore(Options{})
	if s.opts.Retention != DefaultRetention || s.opts.MaxBytes != DefaultMaxBytes {
		t.Fatalf("defaults %+v", s.opts)
	}
	if err := s.Send(context.Background(), []profilesink.Profile{{Service: "nil"}}); err != nil {
		t.Fatal(err)
	}
	if s.evicted.invalid != 1 || len(s.profiles) != 0 {
		t.Fatalf("a profile without pprof: invalid %d, kept %d", s.evicted.invalid, len(s.profiles))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Send(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send on a cancelled context: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	p := stackProfile(t, time.Now(), map[string]int64{"main": 1})
	if err := s.Send(context.Background(), []profilesink.Profile{sinkProfile("x", time.Now(), p)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
}

// The store keeps each profile encoded, not decoded: an hour of them is a
// tenth of the memory. Its size is what it holds, and a view decodes the
// same profile that was sent.
func TestStoreKeepsProfilesEncoded(t *testing.T) {
	stacks := map[string]int64{}
	for i := range 3000 {
		stacks["main;layer"+strconv.Itoa(i%50)+";mid"+strconv.Itoa(i%300)+";leaf_function_"+strconv.Itoa(i)] = int64(i%7 + 1)
	}
	p := stackProfile(t, t0, stacks)
	sent := sinkProfile("svc", t0, p)
	e := mustEntry(t, sent)
	if e.p.Pprof != nil || sent.Pprof != p {
		t.Fatal("the entry holds the decoded profile, or the sender's profile was changed")
	}
	if e.size < int64(len(e.raw)) || e.size > int64(len(e.raw))+4096 {
		t.Errorf("size %d for %d encoded bytes", e.size, len(e.raw))
	}
	got, err := e.profile()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encode(t, got), encode(t, p)) {
		t.Error("the decoded profile differs from the one sent")
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	decoded, err := e.profile()
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(decoded)
	t.Logf("encoded %d bytes, decoded %d bytes of heap (%.1fx)", len(e.raw), heap, float64(heap)/float64(len(e.raw)))
	if heap < 3*int64(len(e.raw)) {
		t.Errorf("decoded %d bytes against %d encoded: keeping it encoded saves little", heap, len(e.raw))
	}
}

// The agent feeds the store from its own goroutines while the page reads
// it: run them together under the race detector.
func TestStoreConcurrentUse(t *testing.T) {
	s := NewStore(Options{MaxBytes: 1 << 20})
	h := testHandler(s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			now := time.Now()
			p := stackProfile(t, now, map[string]int64{"main;hot_alpha": int64(i + 1)})
			if err := s.Send(context.Background(), []profilesink.Profile{sinkProfile("svc"+strconv.Itoa(i%3), now, p)}); err != nil {
				t.Error(err)
				return
			}
			s.AddReadings(now, reading(histOf(t, 3, uint64(i+1)*1000)))
			s.SetSelf(now, map[string]float64{"vigil.samples": float64(i)})
		}
	}()
	for _, path := range []string{"/api/flamegraph", "/api/histograms", "/api/self", "/api/processes", "/api/profile.pb.gz"} {
		for range 10 {
			if rec := get(t, h, path); rec.Code != http.StatusOK && rec.Code != http.StatusNotFound {
				t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
			}
		}
	}
	<-done
	if n := len(s.window("", time.Time{})); n != 50 {
		t.Errorf("%d profiles retained, want 50", n)
	}
}
