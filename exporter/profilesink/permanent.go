package profilesink

import "errors"

// permanentError marks a failure that retrying cannot fix (the backend
// rejected the data itself, or the profile can never fit the sink), so the
// queue drops the batch at once instead of blocking newer ones behind it.
type permanentError struct {
	err      error
	rejected int // profiles of the batch refused; 0: all of them
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that Queued does not retry it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err (or one it wraps) was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Rejected is Permanent for a batch of which only n profiles were refused
// for good and the others delivered, so the queue counts each side right.
func Rejected(n int, err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err, rejected: n}
}

// rejectedOf is how many of a batch of size n a permanent err refused.
func rejectedOf(err error, n int) int {
	var p *permanentError
	if errors.As(err, &p) && p.rejected > 0 && p.rejected < n {
		return p.rejected
	}
	return n
}
