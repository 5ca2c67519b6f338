package histmap

import "testing"

func TestPrepareRefusesBadOptionsByName(t *testing.T) {
	if l, err := Prepare(3, 0); err != nil || l.Scale != 3 {
		t.Fatalf("Prepare(3, 0) = %v, %v", l, err)
	}
	for _, tc := range []struct {
		scale     int32
		maxSeries int
	}{{-1, 0}, {9, 0}, {3, -1}, {3, MaxSeriesLimit + 1}} {
		if _, err := Prepare(tc.scale, tc.maxSeries); err == nil {
			t.Errorf("Prepare(%d, %d) accepted", tc.scale, tc.maxSeries)
		}
	}
}
