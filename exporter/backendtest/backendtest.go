// Package backendtest starts real metric backends for end-to-end tests: an
// OpenTelemetry Collector (the project's own minimal build, see
// exporter/testdata/otelcol) and VictoriaMetrics. Each test starts its own
// server on free loopback ports and the server stops when the test ends.
// The binaries come from `make backends`; a test that needs one that was not
// built skips, naming the variable and the make target.
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"syscall"
	"testing"
	"time"
)

// Environment variables naming the server binaries.
const (
	EnvOtelcol         = "VIGIL_OTELCOL_BIN"
	EnvVictoriaMetrics = "VIGIL_VICTORIAMETRICS_BIN"
	EnvPyroscope       = "VIGIL_PYROSCOPE_BIN"
	EnvPrometheus      = "VIGIL_PROMETHEUS_BIN" // optional: else prometheus on PATH
)

const (
	startTimeout = 20 * time.Second
	stopTimeout  = 10 * time.Second
	startTries   = 3 // a free port can be taken between probing and binding
)

// binary returns the server binary named by env, or skips the test.
func binary(tb testing.TB, env string) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("skipped in -short mode: starts a real server")
	}
	p := os.Getenv(env)
	if p == "" {
		missing(tb, "%s is not set; run `make backends` and set it (the Makefile's test target does)", env)
	}
	if _, err := os.Stat(p); err != nil {
		missing(tb, "%s=%s: %v; run `make backends`", env, p, err)
	}
	return p
}

// missing skips a test whose server is not there, except in CI (CI=true),
// where .ci/run provides every server and a missing one is a failure, not
// a test quietly not run.
func missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true and a server is missing: "+format, args...)
	}
	tb.Skipf("skipped: "+format, args...)
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// process is one running server whose output goes to a log file that is
// shown when the test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProcess(tb testing.TB, name, dir string, bin string, args ...string) (*process, error) {
	return startProcessEnv(tb, name, dir, nil, bin, args...)
}

// startProcessEnv is startProcess with env added to the test's environment.
func startProcessEnv(tb testing.TB, name, dir string, env []string, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644) // a restart appends
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// waitHealthy polls check until it succeeds, the process exits, or time runs out.
func (p *process) waitHealthy(check func() error) error {
	deadline := time.Now().Add(startTimeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during start (%v); log:\n%s", p.name, p.err, p.tail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %v: %v; log:\n%s", p.name, startTimeout, err, p.tail())
		}
	}
}

// stop sends SIGTERM to this process only and waits; SIGKILL if it hangs.
func (p *process) stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s ignored SIGTERM for %v; killed", p.name, stopTimeout)
	}
}

// tail returns the end of the server's log.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

func (p *process) cleanup(tb testing.TB) {
	tb.Cleanup(func() {
		if err := p.stop(); err != nil {
			tb.Logf("stopping %s: %v", p.name, err)
		}
		if tb.Failed() {
			tb.Logf("%s log:\n%s", p.name, p.tail())
		}
	})
}

// start retries on a fresh set of ports when the server could not bind.
func start(tb testing.TB, nPorts int, launch func(ports []int) (*process, error)) (*process, []int) {
	tb.Helper()
	var errs []error
	for range startTries {
		ports, err := freePorts(nPorts)
		if err != nil {
			tb.Fatal(err)
		}
		p, err := launch(ports)
		if err == nil {
			p.cleanup(tb)
			return p, ports
		}
		errs = append(errs, err)
	}
	tb.Fatalf("starting server: %v", errors.Join(errs...))
	return nil, nil
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return do(req)
}

func do(req *http.Request) ([]byte, error) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return buf.Bytes(), fmt.Errorf("%s %s: %s: %s", req.Method, req.URL, resp.Status, bytes.TrimSpace(buf.Bytes()))
	}
	return buf.Bytes(), nil
}
