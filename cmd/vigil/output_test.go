package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/pprof/profile"
	"golang.org/x/sys/unix"
)

// -o naming a device or a pipe (-o /dev/null, a FIFO) writes into it: the
// temp-file-and-rename that protects regular files would replace the
// device or pipe itself with a regular file.
func TestProfileWritesIntoAPipeInPlace(t *testing.T) {
	requireRoot(t)
	fifo := filepath.Join(t.TempDir(), "profile.fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(fifo)
		if err != nil {
			got <- nil
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- b
	}()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"profile", "-d", "1s", "--pid", strconv.Itoa(os.Getpid()), "-o", fifo}, &stdout, &stderr); code != 0 {
		t.Fatalf("vigil profile exited %d: %s", code, stderr.String())
	}
	b := <-got
	if _, err := profile.ParseData(b); err != nil {
		t.Fatalf("what came through the pipe is no profile (%d bytes): %v", len(b), err)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the pipe was replaced: %v %v", st.Mode(), err)
	}
}
