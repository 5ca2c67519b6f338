// Package attach records how each hook was attached: every hook carries an
// ordered list of strategies (fentry/fexit, kprobe, tp_btf, tracepoint, ...),
// tries them by really loading and attaching, and keeps the first that works
// together with the reason each better one failed.
package attach

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNoStrategy is returned when no strategy of a hook could attach.
var ErrNoStrategy = errors.New("no attach strategy worked")

// Attempt is one strategy tried for a hook.
type Attempt struct {
	Strategy string // e.g. "fentry", "kprobe", "tp_btf", "tracepoint", "perf_event"
	Err      error  // nil for the strategy that was chosen
}

// Report is what happened when a hook was attached.
type Report struct {
	Hook     string    // e.g. "read", "runqueue", "tcp", "block", "profile"
	Chosen   string    // the strategy in use; "" when none worked
	Attempts []Attempt // in the order tried
}

// Strategy is one way to attach a hook. Try loads and attaches; on failure it
// must close whatever it opened and return an error saying why.
type Strategy struct {
	Name string
	Try  func() error
}

// First tries the strategies in order and stops at the first that works.
// Strategies named in skip are not tried (recorded as skipped), which lets
// tests and operators force a fallback.
func First(hook string, strategies []Strategy, skip map[string]bool) (Report, error) {
	r := Report{Hook: hook}
	for _, s := range strategies {
		if skip[s.Name] {
			r.Attempts = append(r.Attempts, Attempt{s.Name, errSkipped})
			continue
		}
		err := explain(s.Try())
		r.Attempts = append(r.Attempts, Attempt{s.Name, err})
		if err == nil {
			r.Chosen = s.Name
			return r, nil
		}
	}
	return r, fmt.Errorf("%s: %w (%s)", hook, ErrNoStrategy, r.Reasons())
}

var errSkipped = errors.New("disabled by configuration")

// refusedError replaces the eBPF library's text for EPERM, which suggests
// raising RLIMIT_MEMLOCK: vigil raises it itself before loading, and from
// Linux 5.11 on it no longer applies, so for a privileged vigil the usual
// causes are others. The original error stays reachable with errors.Is/As.
type refusedError struct{ err error }

func (e refusedError) Error() string {
	return "the kernel refused it (operation not permitted): kernel lockdown, a security module, " +
		"or a kernel that does not allow this program type; before Linux 5.11 also RLIMIT_MEMLOCK"
}

func (e refusedError) Unwrap() error { return e.err }

func explain(err error) error {
	if err != nil && errors.Is(err, unix.EPERM) {
		return refusedError{err}
	}
	return err
}

// Reasons lists why each strategy that did not attach failed, in the
// order tried: "fentry: ...; kprobe: ...".
func (r Report) Reasons() string {
	parts := make([]string, 0, len(r.Attempts))
	for _, a := range r.Attempts {
		if a.Err != nil {
			parts = append(parts, a.Strategy+": "+a.Err.Error())
		}
	}
	return strings.Join(parts, "; ")
}

// String renders the report on one line, e.g.
// "read: tracepoint (fentry: ...; kprobe: ...)".
func (r Report) String() string {
	chosen := r.Chosen
	if chosen == "" {
		chosen = "unavailable"
	}
	if why := r.Reasons(); why != "" {
		return fmt.Sprintf("%s: %s (%s)", r.Hook, chosen, why)
	}
	return r.Hook + ": " + chosen
}
