package profiler

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// ProcInfo is what the agent knows of a process beyond its samples. It is
// read when the process is first sampled (or execs), because a short-lived
// process is gone by the end of the interval.
type ProcInfo struct {
	PID         uint32
	Executable  string // base name of /proc/<pid>/exe, "" when unreadable
	ContainerID string // from /proc/<pid>/cgroup, "" on the host
	CommandLine string // only when asked for (privacy)
	ServiceName string // OTEL_SERVICE_NAME from /proc/<pid>/environ, only when asked for
}

// ProcReader reads process metadata from a /proc tree.
type ProcReader struct {
	Root        string // "/proc" unless testing
	CommandLine bool   // read command lines (off by default: they may hold secrets)
	Environ     bool   // read OTEL_SERVICE_NAME from the environment (off by default)
}

// maxProcFile bounds what is read from one /proc file.
const maxProcFile = 64 << 10

// Read returns what can be read of pid now; fields that can't be read stay empty.
func (r ProcReader) Read(pid uint32) ProcInfo {
	dir := filepath.Join(r.root(), strconv.FormatUint(uint64(pid), 10))
	info := ProcInfo{PID: pid}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		info.Executable = filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	}
	if b, err := readBounded(filepath.Join(dir, "cgroup")); err == nil {
		info.ContainerID = ContainerID(string(b))
	}
	if r.CommandLine {
		if b, err := readBounded(filepath.Join(dir, "cmdline")); err == nil {
			info.CommandLine = strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
		}
	}
	if r.Environ {
		if b, err := readBounded(filepath.Join(dir, "environ")); err == nil {
			info.ServiceName = environValue(b, "OTEL_SERVICE_NAME")
		}
	}
	return info
}

func (r ProcReader) root() string {
	if r.Root == "" {
		return "/proc"
	}
	return r.Root
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, maxProcFile)
	n, err := f.Read(buf)
	if n > 0 {
		return buf[:n], nil
	}
	return nil, err
}

func environValue(env []byte, key string) string {
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(key+"=")); ok {
			return string(v)
		}
	}
	return ""
}

// containerIDPattern matches the 64-hex-digit ids that Docker, containerd,
// CRI-O and Podman put in cgroup paths (docker-<id>.scope,
// cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope, /docker/<id>).
var containerIDPattern = regexp.MustCompile(`(?:^|[/\-:])([0-9a-f]{64})(?:\.scope)?(?:/|$)`)

// ContainerID extracts the container id from the contents of
// /proc/<pid>/cgroup; "" when the process is not in a container.
func ContainerID(cgroup string) string {
	for _, line := range strings.Split(cgroup, "\n") {
		// hierarchy-ID:controllers:path; the path may contain ':'.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if m := containerIDPattern.FindAllStringSubmatch(parts[2], -1); len(m) > 0 {
			return m[len(m)-1][1]
		}
	}
	return ""
}

// procCache remembers ProcInfo per pid, bounded: when full, the entries of
// processes that no longer exist go first, then everything (it refills
// from the next announcements).
type procCache struct {
	mu   sync.Mutex
	max  int
	info map[uint32]ProcInfo
	root string
}

func newProcCache(max int, root string) *procCache {
	if root == "" {
		root = "/proc"
	}
	return &procCache{max: max, info: map[uint32]ProcInfo{}, root: root}
}

func (c *procCache) put(p ProcInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.info) >= c.max {
		c.evictGone()
	}
	c.info[p.PID] = p
}

func (c *procCache) get(pid uint32) (ProcInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.info[pid]
	return p, ok
}

func (c *procCache) evictGone() {
	for pid := range c.info {
		if _, err := os.Stat(filepath.Join(c.root, strconv.FormatUint(uint64(pid), 10))); err != nil {
			delete(c.info, pid)
		}
	}
	if len(c.info) >= c.max {
		clear(c.info)
	}
}
