package hooks

import (
	"slices"
	"testing"
)

func TestNamesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, h := range All() {
		if seen["hook "+h.Name] {
			t.Errorf("hook %s listed twice", h.Name)
		}
		seen["hook "+h.Name] = true
	}
	seen = map[string]bool{}
	for _, p := range Points() {
		if seen[p.Name] {
			t.Errorf("point %s listed twice", p.Name)
		}
		seen[p.Name] = true
		if len(p.Strategies) == 0 {
			t.Errorf("point %s has no strategy", p.Name)
		}
		names := p.StrategyNames()
		for i, n := range names {
			if slices.Index(names, n) != i {
				t.Errorf("point %s names strategy %s twice", p.Name, n)
			}
		}
	}
}

func TestEveryStrategyRunsOnAKernelVigilSupports(t *testing.T) {
	for _, p := range Points() {
		for _, s := range p.Strategies {
			if s.MinKernel.Before(Minimum) {
				t.Errorf("%s %s: minimum kernel %s is before vigil's %s", p.Name, s.Name, s.MinKernel, Minimum)
			}
			if s.MinKernel != Minimum && s.Why == "" {
				t.Errorf("%s %s needs %s without saying why", p.Name, s.Name, s.MinKernel)
			}
		}
	}
}

func TestLatencyNamesAndStrategies(t *testing.T) {
	if got, want := LatencyNames(), []string{"read", "runqueue", "tcp", "block"}; !slices.Equal(got, want) {
		t.Errorf("LatencyNames = %q, want %q", got, want)
	}
	if got, want := LatencyStrategies(), []string{Fentry, Kprobe, TPBTF, Tracepoint}; !slices.Equal(got, want) {
		t.Errorf("LatencyStrategies = %q, want %q", got, want)
	}
}

func TestListCannotBeChangedThroughItsCopies(t *testing.T) {
	h, _ := Lookup("read")
	h.Points[0].Strategies[0].Name = "changed"
	All()[0].Points[0].Name = "changed"
	if p, _ := PointOf("read"); p.Strategies[0].Name != Fentry {
		t.Errorf("the list changed through a copy: %+v", p)
	}
}

func TestKernelBefore(t *testing.T) {
	for _, tc := range []struct {
		a, b Kernel
		want bool
	}{
		{Kernel{5, 10}, Kernel{5, 11}, true}, {Kernel{5, 11}, Kernel{5, 10}, false},
		{Kernel{5, 15}, Kernel{6, 1}, true}, {Kernel{6, 1}, Kernel{6, 1}, false}, {Kernel{6, 0}, Kernel{5, 19}, false},
	} {
		if got := tc.a.Before(tc.b); got != tc.want {
			t.Errorf("%s.Before(%s) = %v", tc.a, tc.b, got)
		}
	}
}
