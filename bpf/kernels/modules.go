package kernels

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Module is one kernel module ready to insmod, in load order.
type Module struct {
	Name string
	Data []byte // uncompressed ELF, so busybox insmod needs no decompressor
}

// Modules returns the named modules of k and everything they depend on,
// dependencies first. Names built into the kernel are left out. Debian
// ships no modules.dep (depmod runs at install time), so dependencies are
// read from each module's own .modinfo section.
func Modules(k Kernel, names []string) ([]Module, error) {
	files, err := moduleFiles(k.ModulesDir())
	if err != nil {
		return nil, err
	}
	builtin := builtinModules(k.ModulesDir())
	r := &modResolver{files: files, builtin: builtin, seen: map[string]bool{}}
	for _, n := range names {
		if err := r.add(canonModule(n)); err != nil {
			return nil, fmt.Errorf("kernel %s: %w", k.Release, err)
		}
	}
	return r.order, nil
}

type modResolver struct {
	files   map[string]string
	builtin map[string]bool
	seen    map[string]bool
	order   []Module
}

func (r *modResolver) add(name string) error {
	if r.seen[name] || r.builtin[name] {
		return nil
	}
	r.seen[name] = true
	path, ok := r.files[name]
	if !ok {
		return fmt.Errorf("module %s not found", name)
	}
	data, err := readModule(path)
	if err != nil {
		return err
	}
	deps, err := moduleDepends(data)
	if err != nil {
		return fmt.Errorf("module %s: %w", name, err)
	}
	for _, d := range deps {
		if err := r.add(canonModule(d)); err != nil {
			return err
		}
	}
	r.order = append(r.order, Module{Name: name, Data: data})
	return nil
}

// canonModule spells a module name the way the kernel does: '-' and '_'
// are interchangeable in module names.
func canonModule(n string) string { return strings.ReplaceAll(n, "-", "_") }

func moduleFiles(dir string) (map[string]string, error) {
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		base := d.Name()
		for _, ext := range []string{".ko", ".ko.xz"} {
			if n, ok := strings.CutSuffix(base, ext); ok {
				files[canonModule(n)] = p
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing modules: %w", err)
	}
	return files, nil
}

func builtinModules(dir string) map[string]bool {
	b := map[string]bool{}
	data, _ := os.ReadFile(filepath.Join(dir, "modules.builtin"))
	for _, line := range strings.Fields(string(data)) {
		n := strings.TrimSuffix(filepath.Base(line), ".ko")
		b[canonModule(n)] = true
	}
	return b
}

func readModule(path string) ([]byte, error) {
	if !strings.HasSuffix(path, ".xz") {
		return os.ReadFile(path)
	}
	out, err := exec.Command("xz", "-dc", path).Output()
	if err != nil {
		return nil, fmt.Errorf("decompressing %s: %w", path, err)
	}
	return out, nil
}

// moduleDepends reads the "depends=" entry of a module's .modinfo section.
func moduleDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("reading module ELF: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("module has no .modinfo section")
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("reading .modinfo: %w", err)
	}
	for _, kv := range bytes.Split(info, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
