package kernels

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// HostFile is a host file copied into the guest.
type HostFile struct {
	Host  string // path on the host
	Guest string // path in the guest, relative to /
}

// libDirs are where Debian keeps shared libraries on amd64.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib"}

// HostTools copies dynamically linked host programs into the guest, with
// their program interpreter and every shared library they load, at the
// same paths. Tests drive workloads with tools busybox does not do well
// enough (ip netns, losetup --show); bringing the host's own keeps the image
// free of anything but Debian packages already installed. The programs go
// to /usr/local/bin, which the guest searches before busybox.
func HostTools(names []string) ([]HostFile, error) {
	seen := map[string]bool{}
	var files []HostFile
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			return nil, fmt.Errorf("guest tool %s: %w", n, err)
		}
		files = append(files, HostFile{Host: p, Guest: "usr/local/bin/" + n})
		libs, err := sharedLibs(p, seen)
		if err != nil {
			return nil, fmt.Errorf("guest tool %s: %w", n, err)
		}
		files = append(files, libs...)
	}
	return files, nil
}

// sharedLibs lists the interpreter and the libraries of an ELF file,
// recursively, each once.
func sharedLibs(path string, seen map[string]bool) ([]HostFile, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	needed, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var out []HostFile
	if interp := interpreter(f); interp != "" && !seen[interp] {
		seen[interp] = true
		out = append(out, HostFile{Host: interp, Guest: strings.TrimPrefix(interp, "/")})
	}
	for _, lib := range needed {
		p, err := findLib(lib)
		if err != nil {
			return nil, fmt.Errorf("%s needs %s: %w", path, lib, err)
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, HostFile{Host: p, Guest: strings.TrimPrefix(p, "/")})
		more, err := sharedLibs(p, seen)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

func interpreter(f *elf.File) string {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err == nil {
				return strings.TrimRight(string(b), "\x00")
			}
		}
	}
	return ""
}

func findLib(name string) (string, error) {
	for _, d := range libDirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %s", strings.Join(libDirs, ", "))
}
