package python

import (
	"errors"
	"fmt"
)

var (
	// ErrNotPython says a file holds no CPython interpreter: it lacks
	// _PyRuntime or _PyEval_EvalFrameDefault.
	ErrNotPython = errors.New("not a CPython interpreter")
	// ErrUnsupported says a file is a CPython interpreter vigil can't walk:
	// a version other than 3.9 to 3.13, another architecture, a
	// free-threaded build, or one whose own offsets disagree with Layout.
	ErrUnsupported = errors.New("unsupported CPython")
)

// Reasons an UnreadableError gives; they are short, to label a metric.
const (
	ReasonReadFailed       = "read_failed"       // the process's memory could not be read there
	ReasonChecksumMismatch = "checksum_mismatch" // the address no longer holds the sampled code object
	ReasonBadObject        = "bad_object"        // what was read is not a code object vigil can name
)

// UnreadableError says why a frame could not be named.
type UnreadableError struct {
	Reason string // one of the Reason constants
	Err    error
}

func (e *UnreadableError) Error() string {
	return fmt.Sprintf("python frame unreadable (%s): %v", e.Reason, e.Err)
}

func (e *UnreadableError) Unwrap() error { return e.Err }

func readFailed(what string, addr uint64, err error) error {
	return &UnreadableError{Reason: ReasonReadFailed, Err: fmt.Errorf("reading %s at %#x: %w", what, addr, err)}
}

func badObject(format string, args ...any) error {
	return &UnreadableError{Reason: ReasonBadObject, Err: fmt.Errorf(format, args...)}
}
