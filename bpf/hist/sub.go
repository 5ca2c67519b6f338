package hist

// Sub is what cur, a later cumulative reading of one series, holds beyond
// prev: bucket by bucket, matched by OTel index so differing offsets are
// fine, with empty edge buckets trimmed. It never aliases either argument.
//
// A reset (the program was reloaded, or the series restarted) shows as a
// change of scale or as any cumulative value going down; then cur itself is
// the delta. That is the rule Prometheus's rate() and increase() and the
// OpenTelemetry cumulative-to-delta conversion apply: after a reset the
// series counts again from zero, so everything it holds happened since.
// Taking zero instead would drop those observations, and subtracting field
// by field would mix two lifetimes of the series.
func Sub(cur, prev Histogram) Histogram {
	if wasReset(cur, prev) {
		return cur.Trimmed()
	}
	out := cur
	out.Counts = append([]uint64(nil), cur.Counts...)
	for i, c := range prev.Counts {
		if c != 0 {
			out.Counts[int(prev.Offset-cur.Offset)+i] -= c
		}
	}
	out.ZeroCount -= prev.ZeroCount
	out.Count -= prev.Count
	out.SumNs -= prev.SumNs
	out.Overflow -= prev.Overflow
	return out.Trimmed()
}

// SubCount is Sub's rule for a monotonic counter: a value that went down
// was reset, so all of it is new.
func SubCount(cur, prev uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// wasReset reports whether cur can't be a later reading of prev: a
// different scale, or a count, sum or bucket that went down (a bucket
// prev has and cur lacks counts as gone down).
func wasReset(cur, prev Histogram) bool {
	if prev.Count == 0 && prev.ZeroCount == 0 && prev.SumNs == 0 && prev.Overflow == 0 && empty(prev.Counts) {
		return false // nothing to subtract, whatever its scale
	}
	if cur.Scale != prev.Scale || cur.Count < prev.Count || cur.ZeroCount < prev.ZeroCount ||
		cur.SumNs < prev.SumNs || cur.Overflow < prev.Overflow {
		return true
	}
	for i, c := range prev.Counts {
		if c != 0 && c > bucketAt(cur, prev.Offset+int32(i)) {
			return true
		}
	}
	return false
}

// bucketAt is cur's count in the bucket with OTel index idx, 0 outside
// its range.
func bucketAt(h Histogram, idx int32) uint64 {
	j := int(idx - h.Offset)
	if j < 0 || j >= len(h.Counts) {
		return 0
	}
	return h.Counts[j]
}

func empty(counts []uint64) bool {
	lo, hi := NonEmpty(counts)
	return lo == hi
}
