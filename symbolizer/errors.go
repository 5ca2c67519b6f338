package symbolizer

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed wraps every failure to parse an untrusted file.
	ErrMalformed = errors.New("malformed input")
	// ErrKallsymsRestricted means /proc/kallsyms shows only zero addresses
	// (kernel.kptr_restrict, or not root): kernel frames cannot be named.
	ErrKallsymsRestricted = errors.New("kallsyms addresses are hidden (kernel.kptr_restrict or missing CAP_SYSLOG)")
	// ErrTooLarge is returned when a file claims a size beyond the bounds.
	ErrTooLarge = errors.New("too large")
)

// errPanic turns a recovered panic from a parser into an error.
func errPanic(r any) error {
	return fmt.Errorf("%w: parser panic: %v", ErrMalformed, r)
}
