package config

import (
	"errors"
	"os"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the file parser: it must never panic,
// and must return either a config or Problems, never both nor neither.
func FuzzLoad(f *testing.F) {
	if example, err := os.ReadFile(exampleFile); err == nil {
		f.Add(example)
	}
	f.Add([]byte("profiler: {frequency: 99, pids: [1, 2]}\nsinks: {directory: {max_bytes: 1GiB}}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Parse error %T %v is not a non-empty Problems", err, err)
			}
			return
		}
		// A parsed config validates without panicking, whatever it holds.
		_ = cfg.Validate()
	})
}
