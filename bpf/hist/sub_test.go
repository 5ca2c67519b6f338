package hist

import (
	"slices"
	"testing"
)

func h(scale, offset int32, counts ...uint64) Histogram {
	var n uint64
	for _, c := range counts {
		n += c
	}
	return Histogram{Scale: scale, Offset: offset, Counts: counts, Count: n, SumNs: n * 1000}
}

func TestSubAlignsBucketsByIndex(t *testing.T) {
	prev := h(3, 10, 1, 2)
	cur := h(3, 8, 4, 0, 3, 5, 7)
	d := Sub(cur, prev)
	// Index 10 holds 3-1, index 11 holds 5-2.
	want := Histogram{Scale: 3, Offset: 8, Counts: []uint64{4, 0, 2, 3, 7}, Count: 16, SumNs: 16000}
	if !equal(d, want) {
		t.Errorf("Sub = %+v, want %+v", d, want)
	}
}

func TestSubEdges(t *testing.T) {
	cur := h(3, 8, 4, 0, 3)
	cur.ZeroCount, cur.Overflow, cur.Count = 2, 1, cur.Count+2
	for _, tc := range []struct {
		name      string
		cur, prev Histogram
		want      Histogram
	}{
		{"first reading: the zero histogram", cur, Histogram{}, cur},
		{"nothing new: empty, no buckets", cur, cur, Histogram{Scale: 3}},
		{"prev outside cur's range is a reset", h(3, 0, 1), h(3, 5, 1), h(3, 0, 1)},
		{"scale changed: reloaded", h(3, 0, 5), h(2, 0, 1), h(3, 0, 5)},
		{"count went down: reset", h(3, 0, 1), h(3, 0, 2), h(3, 0, 1)},
		{"a bucket went down though the count rose: reset and refilled", h(3, 0, 1, 9), h(3, 0, 2, 1), h(3, 0, 1, 9)},
		{"zero count went down: reset", Histogram{Scale: 3, ZeroCount: 1, Count: 5}, Histogram{Scale: 3, ZeroCount: 2, Count: 2}, Histogram{Scale: 3, ZeroCount: 1, Count: 5}},
		{"overflow went down: reset", Histogram{Scale: 3, Overflow: 1, Count: 5}, Histogram{Scale: 3, Overflow: 2, Count: 2}, Histogram{Scale: 3, Overflow: 1, Count: 5}},
		{"only zero values and overflow new", Histogram{Scale: 3, ZeroCount: 3, Overflow: 4, Count: 9, SumNs: 50},
			Histogram{Scale: 3, ZeroCount: 1, Overflow: 1, Count: 2, SumNs: 20}, Histogram{Scale: 3, ZeroCount: 2, Overflow: 3, Count: 7, SumNs: 30}},
		{"trims empty edge buckets", h(3, 4, 1, 1, 5, 1), h(3, 4, 1, 1, 0, 1), h(3, 6, 5)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sub(tc.cur, tc.prev); !equal(got, tc.want) {
				t.Errorf("Sub = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSubNeverAliasesItsArguments(t *testing.T) {
	cur := h(3, 0, 1, 2)
	for _, prev := range []Histogram{{}, h(3, 0, 1, 1)} {
		d := Sub(cur, prev)
		d.Counts[0] = 99
		if cur.Counts[0] != 1 {
			t.Fatalf("Sub's result shares cur's buckets")
		}
	}
}

func TestSubCount(t *testing.T) {
	for _, tc := range []struct{ cur, prev, want uint64 }{
		{5, 3, 2}, {3, 3, 0}, {0, 0, 0}, {2, 7, 2}, {1 << 63, 0, 1 << 63},
	} {
		if got := SubCount(tc.cur, tc.prev); got != tc.want {
			t.Errorf("SubCount(%d, %d) = %d, want %d", tc.cur, tc.prev, got, tc.want)
		}
	}
}

func equal(a, b Histogram) bool {
	return a.Scale == b.Scale && a.Offset == b.Offset && slices.Equal(a.Counts, b.Counts) &&
		a.ZeroCount == b.ZeroCount && a.Count == b.Count && a.SumNs == b.SumNs && a.Overflow == b.Overflow
}
