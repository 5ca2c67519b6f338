// Package kernels runs vigil's privileged tests inside other Linux kernels:
// it fetches Debian's kernel packages, builds an initramfs holding busybox and
// statically linked test binaries, boots each kernel in QEMU, and reads back
// which attach strategy every hook chose there and whether the tests passed.
//
// The host kernel may lack kprobes or refuse fentry; distribution kernels
// have them, so this is where those strategies are proven.
package kernels

import (
	"path/filepath"
)

// Kernel is one unpacked Debian kernel package.
type Kernel struct {
	Package string // e.g. "linux-image-6.1.0-56-cloud-amd64"
	Release string // uname -r, e.g. "6.1.0-56-cloud-amd64"
	Root    string // where the package was unpacked
}

// Vmlinuz is the bootable image.
func (k Kernel) Vmlinuz() string { return filepath.Join(k.Root, "boot", "vmlinuz-"+k.Release) }

// Config is the kernel's build configuration.
func (k Kernel) Config() string { return filepath.Join(k.Root, "boot", "config-"+k.Release) }

// ModulesDir holds the kernel's loadable modules.
func (k Kernel) ModulesDir() string { return filepath.Join(k.Root, "lib", "modules", k.Release) }
