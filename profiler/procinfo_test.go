package profiler

import (
	"os"
	"path/filepath"
	"testing"
)

func TestContainerID(t *testing.T) {
	id := "4f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
	cases := map[string]string{
		"0::/system.slice/docker-" + id + ".scope\n":                                                        id,
		"0::/kubepods.slice/kubepods-burstable.slice/kubepods-pod1.slice/cri-containerd-" + id + ".scope\n": id,
		"12:cpu,cpuacct:/docker/" + id + "\n11:memory:/docker/" + id + "\n":                                 id,
		"0::/machine.slice/libpod-" + id + ".scope/container\n":                                             id,
		"0::/kubepods/besteffort/pod0c8d/" + id + "\n":                                                      id,
		"0::/user.slice/user-1000.slice/session-2.scope\n":                                                  "",
		"0::/system.slice/sshd.service\n":                                                                   "",
		"garbage":                                                                                           "",
		"0::/docker/" + id[:63] + "\n":                                                                      "",
	}
	for in, want := range cases {
		if got := ContainerID(in); got != want {
			t.Errorf("ContainerID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProcReaderReadsFakeProc(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "42")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/usr/bin/nginx (deleted)", filepath.Join(dir, "exe"))
	os.WriteFile(filepath.Join(dir, "cgroup"), []byte("0::/system.slice/nginx.service\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cmdline"), []byte("nginx\x00-g\x00daemon off;\x00"), 0o644)
	os.WriteFile(filepath.Join(dir, "environ"), []byte("PATH=/bin\x00OTEL_SERVICE_NAME=frontend\x00"), 0o644)

	private := ProcReader{Root: root}.Read(42)
	if private.Executable != "nginx" || private.ContainerID != "" || private.CommandLine != "" || private.ServiceName != "" {
		t.Errorf("default read %+v: command line and environment must stay unread", private)
	}
	full := ProcReader{Root: root, CommandLine: true, Environ: true}.Read(42)
	if full.CommandLine != "nginx -g daemon off;" || full.ServiceName != "frontend" {
		t.Errorf("opt-in read %+v", full)
	}
	if gone := (ProcReader{Root: root}).Read(43); gone.Executable != "" || gone.PID != 43 {
		t.Errorf("missing process %+v", gone)
	}
}

func TestProcCacheIsBounded(t *testing.T) {
	c := newProcCache(4, t.TempDir()) // an empty /proc: every entry is "gone"
	for pid := uint32(1); pid <= 100; pid++ {
		c.put(ProcInfo{PID: pid})
	}
	if len(c.info) > 4 {
		t.Errorf("cache holds %d entries, bound 4", len(c.info))
	}
	if _, ok := c.get(100); !ok {
		t.Error("the newest entry was evicted")
	}
}
