package kernels

import (
	"bufio"
	_ "embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

//go:embed init.sh
var initScript []byte

// Job is one program the guest runs, with its own timeout.
type Job struct {
	Name    string        // names the job in the results
	Binary  string        // host path of a statically linked executable
	Args    []string      // e.g. -test.v; no spaces inside one argument
	Dir     string        // guest working directory, relative to /; the binary goes there
	Timeout time.Duration // the guest kills the job after this long
}

// Image is what goes into an initramfs.
type Image struct {
	Busybox string // host path of a static busybox
	Jobs    []Job
	Modules []Module          // loaded in this order before the jobs run
	Trees   map[string]string // guest directory -> host directory copied there (test data)
	Files   []HostFile        // host programs and the libraries they need
}

// WriteInitramfs writes img as an uncompressed newc cpio archive. It stays
// uncompressed on purpose: under software emulation the guest would spend
// longer inflating it than the host spends copying it.
func WriteInitramfs(path string, img Image) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating initramfs: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("writing initramfs: %w", cerr)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	c := newCPIOWriter(bw)
	if err := writeImage(c, img); err != nil {
		return fmt.Errorf("writing initramfs %s: %w", path, err)
	}
	if err := c.Close(); err != nil {
		return fmt.Errorf("writing initramfs %s: %w", path, err)
	}
	return bw.Flush()
}

func writeImage(c *cpioWriter, img Image) error {
	dirs := newDirSet(c)
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "run", "root", "modules"} {
		if err := dirs.ensure(d); err != nil {
			return err
		}
	}
	if err := copyFile(c, img.Busybox, "bin/busybox", 0o755); err != nil {
		return err
	}
	if err := c.File("init", 0o755, initScript); err != nil {
		return err
	}
	if err := writeModules(c, img.Modules); err != nil {
		return err
	}
	for _, guest := range sortedTrees(img.Trees) {
		if err := copyTree(c, dirs, img.Trees[guest], guest); err != nil {
			return err
		}
	}
	for _, f := range img.Files {
		if err := dirs.ensure(path.Dir(f.Guest)); err != nil {
			return err
		}
		if err := copyFile(c, f.Host, f.Guest, 0o755); err != nil {
			return err
		}
	}
	for _, j := range img.Jobs {
		if err := writeJob(c, dirs, j); err != nil {
			return fmt.Errorf("job %s: %w", j.Name, err)
		}
	}
	return c.File("jobs.txt", 0o644, []byte(jobList(img.Jobs)))
}

// dirSet adds each parent directory once, before anything inside it.
type dirSet struct {
	c    *cpioWriter
	done map[string]bool
}

func newDirSet(c *cpioWriter) *dirSet {
	return &dirSet{c: c, done: map[string]bool{".": true, "/": true, "": true}}
}

func (d *dirSet) ensure(dir string) error {
	dir = strings.Trim(dir, "/")
	if d.done[dir] {
		return nil
	}
	if err := d.ensure(path.Dir(dir)); err != nil {
		return err
	}
	d.done[dir] = true
	return d.c.Dir(dir)
}

func writeModules(c *cpioWriter, mods []Module) error {
	var order strings.Builder
	for _, m := range mods {
		if err := c.File("modules/"+m.Name+".ko", 0o644, m.Data); err != nil {
			return err
		}
		order.WriteString(m.Name + "\n")
	}
	return c.File("modules.order", 0o644, []byte(order.String()))
}

func writeJob(c *cpioWriter, dirs *dirSet, j Job) error {
	if strings.ContainsAny(j.Name, "/ \t\n") || j.Name == "" {
		return fmt.Errorf("job name %q must be one path element", j.Name)
	}
	for _, a := range j.Args {
		if strings.ContainsAny(a, " \t\n") {
			return fmt.Errorf("argument %q: the guest splits arguments at spaces", a)
		}
	}
	if err := dirs.ensure(j.Dir); err != nil {
		return err
	}
	return copyFile(c, j.Binary, path.Join(strings.Trim(j.Dir, "/"), filepath.Base(j.Binary)), 0o755)
}

// jobList is the guest's job table: name, timeout in seconds, working
// directory, command line, separated by tabs.
func jobList(jobs []Job) string {
	var b strings.Builder
	for _, j := range jobs {
		secs := int(j.Timeout / time.Second)
		if secs < 1 {
			secs = 1
		}
		cmd := append([]string{"./" + filepath.Base(j.Binary)}, j.Args...)
		fmt.Fprintf(&b, "%s\t%d\t/%s\t%s\n", j.Name, secs, strings.Trim(j.Dir, "/"), strings.Join(cmd, " "))
	}
	return b.String()
}

func copyFile(c *cpioWriter, src, dst string, perm uint32) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return c.File(dst, perm, data)
}

func copyTree(c *cpioWriter, dirs *dirSet, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			return dirs.ensure(target)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(c, p, target, uint32(info.Mode().Perm()))
		}
		return nil // sockets, links and the like have no place in a guest
	})
}

func sortedTrees(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
