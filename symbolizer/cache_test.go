package symbolizer

import (
	"sync"
	"testing"
)

// TestBoundsAndEviction runs two programs through a Symbolizer that may
// keep one file and one process: both stay named while in use, evicted
// entries are counted, and nothing leaks after Close.
func TestBoundsAndEviction(t *testing.T) {
	dir := t.TempDir()
	a := start(t, buildC(t, dir, "gcc", "a", "-O1", srcPath(t, "prog.c")))
	b := start(t, buildC(t, dir, "gcc", "b", "-O1", "-DVARIANT", srcPath(t, "prog.c")))
	s := newTest(t, Options{MaxFiles: 1, MaxProcesses: 1})
	for round := 0; round < 2; round++ {
		for _, p := range []*liveProg{a, b} {
			if got := s.User(p.pid(), p.addrs[:1])[0].String(); got != "hot_alpha" {
				t.Fatalf("round %d pid %d: %q", round, p.pid(), got)
			}
			if st := s.Stats(); st.Processes != 1 || st.Files > 1 {
				t.Fatalf("bounds exceeded: %+v", st)
			}
		}
	}
	st := s.Stats()
	if st.ProcessEvictions < 3 || st.FileEvictions == 0 {
		t.Errorf("evictions not counted: %+v", st)
	}
	if st.MapsReads < 4 {
		t.Errorf("maps read %d times, want a re-read after each eviction", st.MapsReads)
	}
}

// TestPrepareIsCheapWhenUnchanged checks that a repeated Prepare of an
// unchanged process reuses what it has.
func TestPrepareIsCheapWhenUnchanged(t *testing.T) {
	p := start(t, buildC(t, t.TempDir(), "gcc", "p", "-O1", srcPath(t, "prog.c")))
	s := newTest(t, Options{})
	for i := 0; i < 5; i++ {
		if err := s.Prepare(p.pid()); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.FilesOpened == 0 || st.FilesOpened > 3 {
		t.Errorf("opened %d files for one process prepared 5 times", st.FilesOpened)
	}
}

// TestConcurrentPrepareUserForget exercises the locking under -race:
// Prepare from one goroutine, User and Forget from others.
func TestConcurrentPrepareUserForget(t *testing.T) {
	p := start(t, buildC(t, t.TempDir(), "gcc", "c", "-O1", "-g", srcPath(t, "prog.c")))
	s := newTest(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				switch g {
				case 0:
					s.Prepare(p.pid())
				case 1:
					if i%10 == 0 {
						s.Forget(p.pid())
					}
					s.Stats()
				default:
					if got := s.User(p.pid(), p.addrs)[0].String(); got != "hot_alpha" {
						errs <- got
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent User named %q", e)
	}
}
