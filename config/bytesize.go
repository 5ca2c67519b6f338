package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes. In YAML and in flags it is a plain integer
// or an integer with a binary suffix: 1024, "64KiB", "256MiB", "1GiB".
type ByteSize int64

// Binary units accepted by ParseByteSize.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

var byteUnits = []struct {
	suffix string
	size   ByteSize
}{{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}, {"B", 1}}

// ParseByteSize parses a byte size. Decimal units (KB, MB, GB) are refused
// rather than guessed, since 1MB and 1MiB differ by 5%.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	num, unit := splitNumber(s)
	if num == "" {
		return 0, fmt.Errorf("%q is not a byte size: want an integer with an optional KiB, MiB or GiB suffix", s)
	}
	mult, err := unitSize(strings.TrimSpace(unit))
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n) * mult, nil
}

// splitNumber splits leading decimal digits from the rest.
func splitNumber(s string) (num, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

func unitSize(unit string) (ByteSize, error) {
	if unit == "" {
		return 1, nil
	}
	for _, u := range byteUnits {
		if unit == u.suffix {
			return u.size, nil
		}
	}
	switch strings.ToUpper(unit) {
	case "K", "KB", "M", "MB", "G", "GB":
		return 0, fmt.Errorf("unit %q is ambiguous: use KiB, MiB or GiB (powers of 1024)", unit)
	}
	if strings.HasPrefix(unit, ".") {
		return 0, errors.New("must be a whole number of bytes")
	}
	return 0, fmt.Errorf("unknown unit %q: use KiB, MiB or GiB", unit)
}

// String formats the size with the largest unit that divides it exactly,
// so that ParseByteSize(s.String()) == s.
func (b ByteSize) String() string {
	if b == 0 {
		return "0"
	}
	for _, u := range byteUnits[:3] {
		if b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalYAML writes the size as ParseByteSize reads it.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }
