package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/symbolizer"
	"github.com/vigil-ebpf/vigil/symbolizer/python"
)

// pythonProc is a running process found to run CPython.
type pythonProc struct {
	pid     int
	version string
	path    string // the interpreter file: the executable or libpython
	err     error  // an interpreter vigil can't walk (an unsupported version)
}

// maxCheckedProcs bounds the processes vigil check looks at.
const maxCheckedProcs = 100000

// findPythonProcesses lists the processes under procRoot that map a CPython
// interpreter, reading each distinct interpreter file once.
func findPythonProcesses(procRoot string) []pythonProc {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	type result struct {
		version string
		err     error
	}
	seen := map[string]result{} // by dev:inode
	var out []pythonProc
	for i, e := range ents {
		if i >= maxCheckedProcs {
			break
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		f, err := os.Open(filepath.Join(procRoot, e.Name(), "maps"))
		if err != nil {
			continue
		}
		maps, _ := symbolizer.ParseMaps(f)
		f.Close()
		for _, m := range maps {
			if !python.LooksLikePython(m.Path) || m.Inode == 0 {
				continue
			}
			key := m.Dev + ":" + strconv.FormatUint(m.Inode, 10)
			r, ok := seen[key]
			if !ok {
				r.version, r.err = inspectPythonFile(filepath.Join(procRoot, e.Name(), "root", m.Path))
				seen[key] = r
			}
			if r.version == "" && r.err == nil {
				continue // named like Python, but is not
			}
			out = append(out, pythonProc{pid: pid, version: r.version, path: m.Path, err: r.err})
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

// inspectPythonFile says which CPython a file is; "" and no error when it
// is not one.
func inspectPythonFile(path string) (string, error) {
	b, err := python.InspectFile(path)
	if errors.Is(err, python.ErrNotPython) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return b.Version.String(), nil
}

// writePythonCheck lists the CPython processes found and whether their
// frames will be walked.
func writePythonCheck(w io.Writer, report string, procs []pythonProc) {
	fmt.Fprintf(w, "\npython frames: %s\n", report)
	if len(procs) == 0 {
		fmt.Fprintln(w, "no running CPython processes found")
		return
	}
	const shown = 20
	var parts []string
	for i, p := range procs {
		if i == shown {
			parts = append(parts, fmt.Sprintf("and %d more", len(procs)-shown))
			break
		}
		if p.err != nil {
			parts = append(parts, fmt.Sprintf("pid %d: %s (%v)", p.pid, p.path, p.err))
			continue
		}
		parts = append(parts, fmt.Sprintf("pid %d: CPython %s (%s)", p.pid, p.version, p.path))
	}
	fmt.Fprintf(w, "CPython processes: %d\n  %s\n", len(procs), strings.Join(parts, "\n  "))
}

// pythonCheckReport is one line on whether Python frames are walked.
func pythonCheckReport(r attach.Report) string {
	if r.Chosen == cpuprofile.StrategyPythonFrames {
		return "walked (CPython 3.9 to 3.13)"
	}
	return "not walked: " + r.Reasons()
}
