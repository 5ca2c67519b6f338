package backendtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Pyroscope is a running Pyroscope server (the Apache-2.0 v0.37 line that
// `make backends` builds): /ingest in, /render and /api/apps out.
type Pyroscope struct {
	Addr string // host:port of the HTTP API

	bin, dir string
	proc     *process
}

// StartPyroscope starts a server for this test and stops it when the test
// ends. It skips when VIGIL_PYROSCOPE_BIN is not set (fails under CI=true).
func StartPyroscope(tb testing.TB) *Pyroscope {
	tb.Helper()
	py := &Pyroscope{bin: binary(tb, EnvPyroscope), dir: tb.TempDir()}
	start(tb, 1, func(ports []int) (*process, error) {
		py.Addr = hostPort(ports[0])
		return py.launch(tb)
	})
	return py
}

// launch starts the server on py.Addr with py.dir's storage and waits for
// /healthz. The server asks pyroscope.io for the latest version at start
// and no flag turns that off: HTTPS_PROXY points that request at a closed
// loopback port, so it never leaves the machine.
func (py *Pyroscope) launch(tb testing.TB) (*process, error) {
	p, err := startProcessEnv(tb, "pyroscope", py.dir, []string{"HTTPS_PROXY=http://127.0.0.1:1"}, py.bin, "server",
		"--api-bind-addr="+py.Addr, "--storage-path="+filepath.Join(py.dir, "data"),
		"--admin-socket-path="+filepath.Join(py.dir, "admin.sock"),
		"--analytics-opt-out", "--no-self-profiling", "--log-level=info")
	if err != nil {
		return nil, err
	}
	if err := p.waitHealthy(func() error { _, err := httpGet(context.Background(), py.URL()+"/healthz"); return err }); err != nil {
		_ = p.stop()
		return nil, err
	}
	py.proc = p
	return p, nil
}

// URL is the server's base URL, the value of sinks.pyroscope.url.
func (py *Pyroscope) URL() string { return "http://" + py.Addr }

// Kill stops the server abruptly (SIGKILL), as a crash would.
func (py *Pyroscope) Kill() error {
	if err := py.proc.cmd.Process.Kill(); err != nil {
		return err
	}
	<-py.proc.done
	return nil
}

// Restart starts the server again after Kill, on the same port and storage.
func (py *Pyroscope) Restart(tb testing.TB) {
	tb.Helper()
	p, err := py.launch(tb)
	if err != nil {
		tb.Fatalf("restarting Pyroscope: %v", err)
	}
	p.cleanup(tb)
}

// Apps lists the application names the server holds (e.g. "hot.cpu").
func (py *Pyroscope) Apps(ctx context.Context) ([]string, error) {
	b, err := httpGet(ctx, py.URL()+"/api/apps")
	if err != nil {
		return nil, err
	}
	var apps []struct{ Name string }
	if err := json.Unmarshal(b, &apps); err != nil {
		return nil, fmt.Errorf("/api/apps: %w", err)
	}
	names := make([]string, 0, len(apps))
	for _, a := range apps {
		names = append(names, a.Name)
	}
	return names, nil
}

// Flame is a /render answer: the flame graph of a query over a time range.
type Flame struct {
	Names    []string  // function names, indexed by Levels' name fields
	Levels   [][]int64 // per depth: groups of (x offset delta, total, self, name index)
	NumTicks int64     // samples in the whole graph
	Units    string
}

// Render queries the flame graph of query (FlameQL, e.g. hot.cpu{host_name="x"})
// between from and until.
func (py *Pyroscope) Render(ctx context.Context, query string, from, until time.Time) (*Flame, error) {
	q := url.Values{"query": {query}, "format": {"json"},
		"from": {strconv.FormatInt(from.Unix(), 10)}, "until": {strconv.FormatInt(until.Unix(), 10)}}
	b, err := httpGet(ctx, py.URL()+"/render?"+q.Encode())
	if err != nil {
		return nil, err
	}
	var resp struct {
		Flamebearer struct {
			Names    []string
			Levels   [][]int64
			NumTicks int64
		}
		Metadata struct{ Units string }
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("/render %s: %w", query, err)
	}
	fb := resp.Flamebearer
	return &Flame{Names: fb.Names, Levels: fb.Levels, NumTicks: fb.NumTicks, Units: resp.Metadata.Units}, nil
}

// Self adds up each function's self ticks (samples where it was the leaf).
func (f *Flame) Self() map[string]int64 {
	out := map[string]int64{}
	for _, level := range f.Levels {
		for i := 0; i+3 < len(level); i += 4 {
			if n := int(level[i+3]); n >= 0 && n < len(f.Names) {
				out[f.Names[n]] += level[i+2]
			}
		}
	}
	return out
}

// LogTail returns the end of the server's log, for failure messages.
func (py *Pyroscope) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(py.dir, "pyroscope.log"))
	if len(b) > 4<<10 {
		b = b[len(b)-4<<10:]
	}
	return string(b)
}
