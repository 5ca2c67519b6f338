package profilesink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
)

// DirectoryConfig is the sinks.directory configuration.
type DirectoryConfig struct {
	Path     string
	MaxFiles int   // vigil's files kept at most
	MaxBytes int64 // their total size at most
}

// Directory writes each profile to its own gzipped pprof file and deletes
// its own oldest files first so the directory never holds more than
// MaxFiles of them nor more than MaxBytes. Files it did not name are never
// touched.
type Directory struct {
	cfg     DirectoryConfig
	log     *slog.Logger
	mu      sync.Mutex // one writer at a time keeps the accounting exact
	deleted atomic.Uint64
}

// NewDirectory creates the directory if needed (0750: profiles name the
// machine's processes).
func NewDirectory(cfg DirectoryConfig, log *slog.Logger) (*Directory, error) {
	if cfg.Path == "" {
		return nil, errors.New("directory sink: path is empty")
	}
	if cfg.MaxFiles < 1 || cfg.MaxBytes < 1 {
		return nil, fmt.Errorf("directory sink %s: max_files and max_bytes must be positive (got %d, %d)", cfg.Path, cfg.MaxFiles, cfg.MaxBytes)
	}
	if err := os.MkdirAll(cfg.Path, 0o750); err != nil {
		return nil, fmt.Errorf("directory sink: %w", err)
	}
	removeStaleTemps(cfg.Path)
	if log == nil {
		log = slog.Default()
	}
	return &Directory{cfg: cfg, log: log.With("component", "profilesink", "sink", "directory")}, nil
}

func (d *Directory) Name() string { return "directory " + d.cfg.Path }

// Deleted is how many files rotation has removed so far.
func (d *Directory) Deleted() uint64 { return d.deleted.Load() }

func (d *Directory) Close() error { return nil }

// Send writes every profile of batch; it stops at the first failure so the
// queue retries the batch. File names depend only on the batch, so a retry
// replaces the files an earlier attempt wrote instead of duplicating them.
func (d *Directory) Send(ctx context.Context, batch []Profile) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.write(&batch[i], i); err != nil {
			return fmt.Errorf("sink %s: %w", d.Name(), err)
		}
	}
	return nil
}

func (d *Directory) write(p *Profile, i int) error {
	if p.Pprof == nil {
		return Permanent(fmt.Errorf("profile of %q has no pprof", p.Service))
	}
	var buf bytes.Buffer
	if err := p.Pprof.Write(&buf); err != nil {
		return Permanent(fmt.Errorf("encoding profile of %q: %w", p.Service, err))
	}
	if int64(buf.Len()) > d.cfg.MaxBytes {
		return Permanent(fmt.Errorf("profile of %q is %d bytes, more than max_bytes %d", p.Service, buf.Len(), d.cfg.MaxBytes))
	}
	name := kindPrefix(p) + fileName(p.Service, p.Start, uniquePart(p, i))
	if err := d.makeRoom(name, int64(buf.Len())); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(d.cfg.Path, name), buf.Bytes())
}

// uniquePart tells apart the groups of one service in one interval: the
// pid when the group is one process, else the profile's place in its batch
// (every batch is one interval, so the start time separates batches).
func uniquePart(p *Profile, i int) string {
	if pid, err := strconv.ParseUint(p.Attrs["process.pid"], 10, 32); err == nil {
		return strconv.FormatUint(pid, 10)
	}
	return "s" + strconv.Itoa(i)
}

// writeAtomic writes a temporary file in the same directory and renames it,
// so a reader (or a crash) never sees half a profile.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o640)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
