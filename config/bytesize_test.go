package config

import (
	"math"
	"strings"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	good := []struct {
		in   string
		want ByteSize
	}{
		{"0", 0},
		{"1024", 1024},
		{"64KiB", 64 * KiB},
		{"256MiB", 256 * MiB},
		{"1GiB", GiB},
		{" 2 GiB ", 2 * GiB},
		{"10B", 10},
		{"8589934591GiB", 8589934591 * GiB}, // the largest GiB count that fits
		{"9223372036854775807", math.MaxInt64},
	}
	for _, c := range good {
		got, err := ParseByteSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "not a byte size"},
		{"-1", "not a byte size"},
		{"MiB", "not a byte size"},
		{"1.5GiB", "whole number"},
		{"10MB", "ambiguous"},
		{"10k", "ambiguous"},
		{"10mib", "unknown unit"},
		{"1TiB", "unknown unit"},
		{"8589934592GiB", "too large"},
		{"9223372036854775808", "too large"},
		{"99999999999999999999999", "too large"},
	}
	for _, c := range bad {
		if _, err := ParseByteSize(c.in); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("ParseByteSize(%q) = %v, want an error containing %q", c.in, err, c.msg)
		}
	}
}

func TestByteSizeStringRoundTrips(t *testing.T) {
	for _, b := range []ByteSize{0, 1, 1000, KiB, 1536, 64 * MiB, MiB + KiB, GiB, 3 * GiB, math.MaxInt64} {
		s := b.String()
		back, err := ParseByteSize(s)
		if err != nil || back != b {
			t.Errorf("%d.String() = %q, parsed back to %d, %v", int64(b), s, back, err)
		}
	}
	if s := (256 * MiB).String(); s != "256MiB" {
		t.Errorf("256MiB formats as %q", s)
	}
	if s := (MiB + KiB).String(); s != "1025KiB" {
		t.Errorf("1MiB+1KiB formats as %q", s)
	}
}
