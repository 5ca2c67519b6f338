package symbolizer

import (
	"strings"

	dm "github.com/ianlancetaylor/demangle"
)

// maxDemangledPow bounds a demangled name to 2^16 bytes: hostile symbol
// names can otherwise expand exponentially.
const maxDemangledPow = 16

// demangle returns the readable form of a C++ (_Z) or Rust (legacy _ZN...E
// with a hash, or v0 _R) symbol name, and the name itself for anything else.
func demangle(name string) string {
	if !strings.HasPrefix(name, "_Z") && !strings.HasPrefix(name, "_R") && !strings.HasPrefix(name, "__Z") {
		return name
	}
	out, err := demangleSafe(name)
	if err != nil {
		return name
	}
	return stripRustHash(out)
}

// demangleSafe runs the demangler and turns a panic on hostile input into an error.
func demangleSafe(name string) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errPanic(r)
		}
	}()
	return dm.ToString(name, dm.NoClones, dm.MaxLength(maxDemangledPow))
}

// stripRustHash drops the "::h0123456789abcdef" disambiguator that legacy
// Rust names carry: it differs per build and only clutters profiles.
func stripRustHash(s string) string {
	i := strings.LastIndex(s, "::h")
	if i < 0 || len(s)-i != 3+16 {
		return s
	}
	for _, c := range s[i+3:] {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return s
		}
	}
	return s[:i]
}
