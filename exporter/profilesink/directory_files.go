package profilesink

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"
)

const (
	fileSuffix     = ".pb.gz"
	timeLayout     = "20060102T150405Z" // RFC 3339 without separators: sorts and is a safe file name
	maxServiceName = 64
)

// offCPUPrefix starts the names of off-CPU profiles, so they sort apart
// from the CPU profiles of the same groups and `ls offcpu-*` finds them.
const offCPUPrefix = "offcpu-"

// ownFile matches the names fileName produces, with or without the off-CPU
// prefix, and nothing else, so rotation cannot delete a file someone else
// put in the directory. Both kinds share the directory's bounds.
var ownFile = regexp.MustCompile(`^(?:offcpu-)?[A-Za-z0-9_][A-Za-z0-9._-]{0,63}-[0-9]{8}T[0-9]{6}Z-s?[0-9]+\.pb\.gz$`)

// tempFile matches what writeAtomic leaves behind when the agent dies
// between creating and renaming; such files are vigil's and only garbage.
var tempFile = regexp.MustCompile(`^\.(?:offcpu-)?[A-Za-z0-9_][A-Za-z0-9._-]{0,63}-[0-9]{8}T[0-9]{6}Z-s?[0-9]+\.pb\.gz\.tmp[0-9]+$`)

// kindPrefix is offCPUPrefix for an off-CPU profile, "" for a CPU one.
func kindPrefix(p *Profile) string {
	if p.Kind() == KindOffCPU {
		return offCPUPrefix
	}
	return ""
}

// removeStaleTemps deletes temporary files of an earlier run.
func removeStaleTemps(dir string) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		if de.Type().IsRegular() && tempFile.MatchString(de.Name()) {
			os.Remove(filepath.Join(dir, de.Name()))
		}
	}
}

// fileName is <service>-<start>-<pid or sN>.pb.gz (an off-CPU profile's
// name has offCPUPrefix before it).
func fileName(service string, start time.Time, unique string) string {
	return safeService(service) + "-" + start.UTC().Format(timeLayout) + "-" + unique + fileSuffix
}

// safeService maps a service name (a container id, an executable name, or a
// user's OTEL_SERVICE_NAME) to a name that is safe in any file system: no
// separators, no leading dot, bounded length.
func safeService(s string) string {
	b := make([]byte, 0, maxServiceName)
	for _, r := range s {
		if len(b) == maxServiceName {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			b = append(b, byte(r))
		default:
			b = append(b, '_')
		}
	}
	if len(b) == 0 || b[0] == '.' || b[0] == '-' {
		b = append([]byte{'_'}, b[:min(len(b), maxServiceName-1)]...)
	}
	return string(b)
}

type ownEntry struct {
	name string
	size int64
	mod  time.Time
}

// ownFiles lists vigil's files in dir, oldest first.
func ownFiles(dir string) ([]ownEntry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []ownEntry
	for _, de := range des {
		if !de.Type().IsRegular() || !ownFile.MatchString(de.Name()) {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, ownEntry{name: de.Name(), size: info.Size(), mod: info.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].mod.Equal(out[j].mod) {
			return out[i].mod.Before(out[j].mod)
		}
		return out[i].name < out[j].name
	})
	return out, nil
}

// makeRoom deletes the oldest own files until one more file of size bytes
// named name fits within both limits (a file being replaced frees its own
// size first).
func (d *Directory) makeRoom(name string, size int64) error {
	files, err := ownFiles(d.cfg.Path)
	if err != nil {
		return fmt.Errorf("listing %s: %w", d.cfg.Path, err)
	}
	var total int64
	kept := files[:0]
	for _, f := range files {
		if f.name == name {
			continue // overwritten by the rename
		}
		total += f.size
		kept = append(kept, f)
	}
	for len(kept) > 0 && (len(kept)+1 > d.cfg.MaxFiles || total+size > d.cfg.MaxBytes) {
		if err := os.Remove(filepath.Join(d.cfg.Path, kept[0].name)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotating %s: %w", d.cfg.Path, err)
		}
		d.deleted.Add(1)
		total -= kept[0].size
		kept = kept[1:]
	}
	return nil
}
