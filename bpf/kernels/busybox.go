package kernels

import (
	"debug/elf"
	"fmt"
	"os/exec"
	"path/filepath"
)

// StaticBusybox finds a statically linked busybox (Debian's busybox-static
// package), the only userland the guest has.
func StaticBusybox() (string, error) {
	p, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox not found: install the busybox-static package: %w", err)
	}
	p, err = filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	static, err := isStatic(p)
	if err != nil {
		return "", fmt.Errorf("inspecting %s: %w", p, err)
	}
	if !static {
		return "", fmt.Errorf("%s is dynamically linked: install the busybox-static package", p)
	}
	return p, nil
}

// isStatic says whether an executable needs no program interpreter.
func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
