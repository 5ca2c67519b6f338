package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// fedStore is a store holding two services' profiles (hot_alpha is api's
// hottest function), a read latency histogram and self counters.
func fedStore(t *testing.T) *Store {
	t.Helper()
	now := time.Now()
	s := NewStore(Options{})
	sendAll(t, s,
		sinkProfile("api", now.Add(-30*time.Second), stackProfile(t, now, map[string]int64{"main;serve;hot_alpha": 60, "main;serve;parse": 15})),
		sinkProfile("api", now, stackProfile(t, now, map[string]int64{"main;serve;hot_alpha": 40, "main;gc": 5})),
		sinkProfile("db", now, stackProfile(t, now, map[string]int64{"main;query;hot_beta": 30})),
	)
	var vals []uint64
	for i := range 3 {
		for j := range 200 {
			vals = append(vals, uint64(20_000+j*j*50))
		}
		s.AddReadings(now.Add(time.Duration(i-2)*15*time.Second), reading(histOf(t, 3, vals...)))
	}
	s.SetSelf(now.Add(-15*time.Second), map[string]float64{"vigil.samples": 100, "vigil.samples.lost{reason=map_full}": 0})
	s.SetSelf(now, map[string]float64{"vigil.samples": 400, "vigil.samples.lost{reason=map_full}": 2})
	return s
}

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Host = "127.0.0.1:7070"
	h.ServeHTTP(rec, req)
	return rec
}

func testHandler(s *Store) http.Handler {
	return (&handler{store: s, loopback: true, log: discardLog()}).routes()
}

func TestAPIAnswers(t *testing.T) {
	h := testHandler(fedStore(t))

	var procs processesView
	decode(t, get(t, h, "/api/processes"), &procs)
	if len(procs.Processes) != 2 || procs.Processes[0].Service != "api" || procs.Processes[0].Samples != 120 ||
		procs.Processes[0].Profiles != 2 || procs.Processes[1].Samples != 30 {
		t.Errorf("processes %+v", procs.Processes)
	}

	var fl flameView
	decode(t, get(t, h, "/api/flamegraph?service=api&since=5m"), &fl)
	if n := find(fl.Root, "api", "main", "serve", "hot_alpha"); fl.Root.Value != 120 || n == nil || n.Value != 100 || find(fl.Root, "db") != nil {
		t.Errorf("flamegraph service=api: root %d, hot_alpha %+v", fl.Root.Value, n)
	}
	decode(t, get(t, h, "/api/flamegraph?since=10s"), &fl) // the profiles ending now only
	if fl.Profiles != 2 || fl.Root.Value != 75 {
		t.Errorf("since=10s: %d profiles, %d samples; want 2 and 75", fl.Profiles, fl.Root.Value)
	}

	var hv histogramsView
	decode(t, get(t, h, "/api/histograms"), &hv)
	if len(hv.Metrics) != 1 || hv.Metrics[0].Name != "vigil.read.duration" || len(hv.Metrics[0].Series) != 1 {
		t.Fatalf("histograms %+v", hv)
	}
	sr := hv.Metrics[0].Series[0]
	if sr.Cumulative.Count != 600 || sr.LastMinute.Count != 600 || len(sr.History) != 2 || sr.History[1].Rate != 200.0/15 {
		t.Errorf("series: cumulative %d, last minute %d, history %+v", sr.Cumulative.Count, sr.LastMinute.Count, sr.History)
	}

	var sv selfView
	decode(t, get(t, h, "/api/self"), &sv)
	if len(sv.Counters) != 2 || sv.Counters[0].Name != "vigil.samples" || sv.Counters[0].Value != 400 ||
		sv.Counters[0].Rate == nil || *sv.Counters[0].Rate != 20 || sv.Web.Profiles != 3 || sv.Web.EstimatedBytes <= 0 {
		t.Errorf("self %+v", sv)
	}
}

func decode(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, type %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatal(err)
	}
}

func TestAPIRefusesWhatItMustNot(t *testing.T) {
	h := testHandler(fedStore(t))
	rec := get(t, h, "/api/flamegraph?since=yesterday")
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `since "yesterday"`) {
		t.Errorf("bad since: %d %s", rec.Code, rec.Body)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(m, "/api/self", strings.NewReader("{}"))
		req.Host = "127.0.0.1:7070"
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: %d, CORS %q", m, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/api/self", nil)
	req.Host = "attacker.example:7070" // a rebound DNS name pointing at 127.0.0.1
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("foreign Host: %d", rec.Code)
	}
	for _, host := range []string{"127.0.0.1:7070", "localhost:7070", "[::1]:7070", "localhost"} {
		if !loopbackHost(host) {
			t.Errorf("%s refused", host)
		}
	}
	rec = get(t, h, "/")
	csp := rec.Header().Get("Content-Security-Policy")
	if rec.Code != http.StatusOK || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("page: %d, CSP %q", rec.Code, csp)
	}
	if rec := get(t, h, "/api/profile.pb.gz?service=nobody"); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"nobody"`) {
		t.Errorf("profile of an unknown service: %d %s", rec.Code, rec.Body)
	}
	if rec := get(t, h, "/nothing"); rec.Code != http.StatusNotFound {
		t.Errorf("/nothing: %d", rec.Code)
	}
}

// The page and everything it loads come from the embedded files, with no
// inline script or style the CSP would block.
func TestPageLoadsOnlyItsOwnFiles(t *testing.T) {
	h := testHandler(NewStore(Options{}))
	page := get(t, h, "/").Body.String()
	if strings.Contains(page, "<script>") || strings.Contains(page, "style=") || strings.Contains(page, "http") {
		t.Error("the page has inline code or an outside address")
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	var loaded []string
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		if !strings.HasPrefix(ref, "/") {
			t.Errorf("page refers to %q, not to a file of its own", ref)
			continue
		}
		rec := get(t, h, ref)
		if ref == "/api/profile.pb.gz" {
			continue // the download link; no profile in an empty store
		}
		if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
			t.Errorf("%s: %d", ref, rec.Code)
		}
		loaded = append(loaded, ref)
	}
	if len(loaded) < 5 || !slices.Contains(loaded, "/static/app.js") || !slices.Contains(loaded, "/static/style.css") {
		t.Errorf("page loads %v", loaded)
	}
	js := get(t, h, "/static/app.js")
	if ct := js.Header().Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Errorf("app.js served as %q", ct)
	}
}

func TestProfileDownloadMergesWithServiceLabels(t *testing.T) {
	rec := get(t, testHandler(fedStore(t)), "/api/profile.pb.gz")
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	p, err := profile.Parse(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatal(err)
	}
	by := map[string]int64{}
	for _, s := range p.Sample {
		by[s.Label[ServiceLabel][0]] += s.Value[0]
	}
	if by["api"] != 120 || by["db"] != 30 || len(by) != 2 {
		t.Errorf("samples by service label %v, want api 120 and db 30", by)
	}
}

func startServer(t *testing.T, s *Store) *Server {
	t.Helper()
	srv, err := NewServer("127.0.0.1:0", s)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv
}

func TestNewServerNamesATakenAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = NewServer(ln.Addr().String(), NewStore(Options{}))
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("NewServer on a taken port: %v, want an error naming %s", err, ln.Addr())
	}
}

func TestServerShutdownWithoutServe(t *testing.T) {
	srv, err := NewServer("127.0.0.1:0", NewStore(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Shutdown", addr)
	}
}

// go tool pprof, as a user would run it, reads the merged profile.
func TestGoToolPprofReadsTheProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("go tool pprof is built on first use: skipped with -short")
	}
	// go test puts its own GOROOT/bin first on the test's PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	srv := startServer(t, fedStore(t))
	url := "http://" + srv.Addr() + "/api/profile.pb.gz?service=api"
	cmd := exec.Command(goBin, "tool", "pprof", "-top", "-sample_index=samples", url)
	// PPROF_TMPDIR keeps pprof's saved copy of the fetched profile out of $HOME.
	cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	top := topLine(out)
	if !strings.Contains(top, "hot_alpha") || !strings.Contains(top, "100 ") || bytes.Contains(out, []byte("hot_beta")) {
		t.Fatalf("go tool pprof -top: first row %q, want hot_alpha with 100 samples and no db frames\n%s", top, out)
	}
}

// topLine returns the first row after pprof's "flat  flat%" header.
func topLine(out []byte) string {
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		if strings.Contains(l, "flat%") && i+1 < len(lines) {
			return lines[i+1]
		}
	}
	return ""
}

func TestServeAnswersOverTCP(t *testing.T) {
	srv := startServer(t, fedStore(t))
	resp, err := http.Get("http://" + srv.Addr() + "/api/processes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"service":"api"`)) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}
