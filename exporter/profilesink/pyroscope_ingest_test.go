package profilesink

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/pprof/profile"
)

// ingestServer is a Pyroscope /ingest endpoint: it checks credentials and
// tenant, splits the name as Pyroscope's own parser does (application, then
// k=v pairs up to ',' or '}'), and parses the body with pprof.
type ingestServer struct {
	tenant, auth string
	fail         atomic.Int32    // HTTP status to answer with, 0: none
	refuse       map[string]bool // applications answered with 422
	url          string
	mu           sync.Mutex
	received     []ingested
}

type ingested struct {
	app    string
	labels map[string]string
	query  map[string]string
	prof   *profile.Profile
	tenant string
}

func startIngestServer(t *testing.T, tenant, auth string) *ingestServer {
	s := &ingestServer{tenant: tenant, auth: auth, refuse: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *ingestServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ingest" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	if code := s.fail.Load(); code != 0 {
		http.Error(w, "injected failure", int(code))
		return
	}
	if r.Header.Get("Authorization") != s.auth || r.Header.Get("X-Scope-OrgID") != s.tenant {
		http.Error(w, "who are you", http.StatusUnauthorized)
		return
	}
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[k] = v[0]
	}
	app, labels, ok := parseIngestName(q["name"])
	form := strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data")
	if !ok || (q["format"] != "pprof") == !form {
		http.Error(w, "bad name or format", http.StatusBadRequest)
		return
	}
	var body []byte
	if !form {
		body, _ = io.ReadAll(r.Body)
	} else {
		// As Pyroscope reads a form: the pprof in "profile", the sample
		// types to store in "sample_type_config".
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		body = formFile(r, "profile")
		q["sample_type_config"] = string(formFile(r, "sample_type_config"))
	}
	p, err := profile.ParseData(body)
	if err != nil || s.refuse[app] {
		http.Error(w, "cannot parse", http.StatusUnprocessableEntity)
		return
	}
	s.mu.Lock()
	s.received = append(s.received, ingested{app: app, labels: labels, query: q, prof: p, tenant: r.Header.Get("X-Scope-OrgID")})
	s.mu.Unlock()
}

func formFile(r *http.Request, field string) []byte {
	fhs := r.MultipartForm.File[field]
	if len(fhs) == 0 {
		return nil
	}
	f, err := fhs[0].Open()
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	return b
}

func parseIngestName(name string) (string, map[string]string, bool) {
	app, rest, ok := strings.Cut(name, "{")
	if !ok || !strings.HasSuffix(rest, "}") || appName(app) != app {
		return "", nil, false
	}
	labels := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || labelName(k) != k {
			return "", nil, false
		}
		labels[k] = v
	}
	return app, labels, true
}

func (s *ingestServer) got() []ingested {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ingested(nil), s.received...)
}

func TestPyroscopeIngestIsTheDefault(t *testing.T) {
	srv := startIngestServer(t, "team-a", "Bearer s3cret")
	py, err := NewPyroscope(PyroscopeConfig{
		URL: srv.url + "/", TenantID: "team-a", BearerToken: "s3cret",
		Labels: map[string]string{"env": "prod", "k8s.cluster-name": "east,west}"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer py.Close()
	api := testProfile(t, "api server", testStart, 0)
	api.Attrs["process.pid"] = "4242"
	if err := py.Send(context.Background(), []Profile{api, testProfile(t, "db", testStart, 0)}); err != nil {
		t.Fatal(err)
	}
	got := srv.got()
	if len(got) != 2 {
		t.Fatalf("server received %d profiles, want 2", len(got))
	}
	if got[0].app == "db" {
		got[0], got[1] = got[1], got[0]
	}
	want := map[string]string{
		"host_name": "node-1", "process_executable_name": "work", "process_pid": "4242",
		"env": "prod", "k8s_cluster_name": "east_west_",
	}
	if got[0].app != "api_server" || !equalMaps(got[0].labels, want) || got[0].tenant != "team-a" {
		t.Errorf("app %q labels %v tenant %q\nwant app api_server, labels %v", got[0].app, got[0].labels, got[0].tenant, want)
	}
	q := got[0].query
	if q["from"] != "1795608015" || q["until"] != "1795608030" || q["sampleRate"] != "19" || q["spyName"] != "ebpfspy" {
		t.Errorf("query %v", q)
	}
	if p := got[0].prof; !hasFunction(p, "hot_loop") || p.Sample[0].Value[0] != 30 {
		t.Errorf("profile arrived changed: %v", p)
	}
}

func TestPyroscopeIngestRetriesOnlyWhatFailed(t *testing.T) {
	srv := startIngestServer(t, "", "")
	py, err := NewPyroscope(PyroscopeConfig{URL: srv.url})
	if err != nil {
		t.Fatal(err)
	}
	srv.refuse["bad"] = true
	batch := []Profile{testProfile(t, "a", testStart, 0), testProfile(t, "bad", testStart, 0), testProfile(t, "c", testStart, 0)}
	srv.fail.Store(http.StatusServiceUnavailable)
	if err := py.Send(context.Background(), batch); err == nil || IsPermanent(err) {
		t.Fatalf("503: %v, want a retryable error", err)
	}
	srv.fail.Store(0)
	// The server takes a and c but refuses bad: the queue drops one profile, not three.
	q := newTestQueue(t, py, fastRetry)
	q.Offer(batch)
	eventually(t, "the batch settled", func() bool { return q.Counters().QueueDepth == 0 })
	if c := q.Counters(); c.Sent != 2 || c.DroppedRejected != 1 || c.Dropped != 1 {
		t.Errorf("counters %+v, want 2 sent and 1 rejected", c)
	}
	// A retry after a part-way failure sends only what was missing.
	srv.mu.Lock()
	srv.received = nil
	srv.mu.Unlock()
	srv.refuse["bad"] = false
	py.done.mark(batch[0].Pprof, false)
	if err := py.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := srv.got(); len(got) != 2 || got[0].app == "a" || got[1].app == "a" {
		t.Errorf("after a part-way failure the retry sent %d profiles (%v), want bad and c only", len(got), got)
	}
}

func TestPyroscopeIngestStatusCodes(t *testing.T) {
	for code, permanent := range map[int]bool{
		http.StatusBadRequest: true, http.StatusRequestEntityTooLarge: true, http.StatusUnprocessableEntity: true,
		http.StatusInternalServerError: false, http.StatusTooManyRequests: false, http.StatusUnauthorized: false,
		http.StatusNotFound: false,
	} {
		if err := ingestStatusError(code, []byte("no")); IsPermanent(err) != permanent {
			t.Errorf("HTTP %d: permanent=%v, want %v", code, IsPermanent(err), permanent)
		}
	}
}

func TestIngestNameEscaping(t *testing.T) {
	p := &Profile{Service: "my app/1", Attrs: map[string]string{"container.id": " a,b{c}d "}}
	typ, err := pyroscopeTypeOf(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ingestName(p, nil, typ), "my_app_1{container_id=a_b_c_d}"; got != want {
		t.Errorf("ingestName = %q, want %q", got, want)
	}
	if got := queryEscape("a b{c=d}"); got != "a%20b%7Bc%3Dd%7D" {
		t.Errorf("queryEscape = %q", got)
	}
	p.Pprof = &profile.Profile{DefaultSampleType: "alloc_space"}
	if _, err := pyroscopeTypeOf(p); err == nil {
		t.Error("a heap profile got a Pyroscope type")
	}
}
