package profilesink

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
)

// pushServer is a Pyroscope push endpoint built on the API's own Connect
// handler: it checks credentials and tenant, and parses every raw profile
// with pprof as the real server would.
type pushServer struct {
	pushv1connect.UnimplementedPusherServiceHandler
	tenant, auth string // expected X-Scope-OrgID and Authorization
	httpFail     atomic.Int32
	url          string

	mu       sync.Mutex
	received []pushedSeries
}

type pushedSeries struct {
	labels map[string]string
	prof   *profile.Profile
	tenant string
}

func startPushServer(t *testing.T, tenant, auth string) *pushServer {
	s := &pushServer{tenant: tenant, auth: auth}
	mux := http.NewServeMux()
	path, h := pushv1connect.NewPusherServiceHandler(s)
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := s.httpFail.Load(); code != 0 {
			http.Error(w, "injected failure", int(code))
			return
		}
		h.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *pushServer) Push(ctx context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	if got := req.Header().Get("Authorization"); got != s.auth {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("bad credentials"))
	}
	tenant := req.Header().Get("X-Scope-OrgID")
	if tenant != s.tenant {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("wrong tenant "+tenant))
	}
	var got []pushedSeries
	for _, series := range req.Msg.Series {
		labels := map[string]string{}
		for _, l := range series.Labels {
			labels[l.Name] = l.Value
		}
		for _, raw := range series.Samples {
			p, err := profile.ParseData(raw.RawProfile)
			if err != nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, err)
			}
			if err := p.CheckValid(); err != nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, err)
			}
			got = append(got, pushedSeries{labels: labels, prof: p, tenant: tenant})
		}
	}
	s.mu.Lock()
	s.received = append(s.received, got...)
	s.mu.Unlock()
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

func (s *pushServer) series() []pushedSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pushedSeries(nil), s.received...)
}

func TestPyroscopePushesLabelledProfiles(t *testing.T) {
	srv := startPushServer(t, "team-a", "Bearer s3cret")
	py, err := NewPyroscope(PyroscopeConfig{
		URL: srv.url + "/", API: PyroscopePush, TenantID: "team-a", BearerToken: "s3cret",
		Labels: map[string]string{"env": "prod", "k8s.cluster-name": "east", "__name__": "evil", "9lives": "cat"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer py.Close()
	api := testProfile(t, "api", testStart, 0)
	api.Attrs["container.id"] = "3f4e5d"
	db := testProfile(t, "db", testStart, 0)
	if err := py.Send(context.Background(), []Profile{api, db}); err != nil {
		t.Fatal(err)
	}
	got := srv.series()
	if len(got) != 2 {
		t.Fatalf("server received %d series, want 2", len(got))
	}
	want := map[string]string{
		"__name__": "process_cpu", "__delta__": "false", "service_name": "api",
		"host_name": "node-1", "process_executable_name": "work", "container_id": "3f4e5d",
		"env": "prod", "k8s_cluster_name": "east", "_name__": "evil", "_9lives": "cat",
	}
	if !equalMaps(got[0].labels, want) {
		t.Errorf("labels %v\nwant   %v", got[0].labels, want)
	}
	if got[1].labels["service_name"] != "db" || got[0].tenant != "team-a" {
		t.Errorf("second series %v, tenant %q", got[1].labels, got[0].tenant)
	}
	p := got[0].prof
	if !hasFunction(p, "hot_loop") || p.Sample[0].Value[0] != 30 || p.Period != int64(time.Second)/19 || p.PeriodType.Type != "cpu" {
		t.Errorf("profile arrived changed: %v", p)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestPyroscopeBasicAuth(t *testing.T) {
	srv := startPushServer(t, "", "Basic dmlnaWw6cHc=") // vigil:pw
	py, err := NewPyroscope(PyroscopeConfig{URL: srv.url, API: PyroscopePush, Username: "vigil", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if err := py.Send(context.Background(), []Profile{testProfile(t, "api", testStart, 0)}); err != nil {
		t.Fatal(err)
	}
	wrong, _ := NewPyroscope(PyroscopeConfig{URL: srv.url, API: PyroscopePush, Username: "vigil", Password: "nope"})
	err = wrong.Send(context.Background(), []Profile{testProfile(t, "api", testStart, 0)})
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "sink pyroscope "+srv.url) {
		t.Errorf("wrong password: %v, want a retryable error naming the sink", err)
	}
}

func TestPyroscopeServerErrorsAreRetriedByTheQueue(t *testing.T) {
	srv := startPushServer(t, "t", "Bearer tok")
	py, err := NewPyroscope(PyroscopeConfig{URL: srv.url, API: PyroscopePush, TenantID: "t", BearerToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	q := newTestQueue(t, py, fastRetry)
	for _, code := range []int{http.StatusInternalServerError, http.StatusUnauthorized} {
		srv.httpFail.Store(int32(code))
		before := q.Counters().Failures
		q.Offer([]Profile{testProfile(t, "api", testStart, 0)})
		eventually(t, "failures", func() bool { return q.Counters().Failures >= before+2 })
		if c := q.Counters(); c.Sent != uint64(len(srv.series())) || !strings.Contains(c.LastError, srv.url) {
			t.Fatalf("HTTP %d: %+v", code, c)
		}
		srv.httpFail.Store(0)
		eventually(t, "delivery after the server recovered", func() bool { return q.Counters().QueueDepth == 0 })
	}
	if c := q.Counters(); c.Sent != 2 || c.Dropped != 0 || len(srv.series()) != 2 {
		t.Errorf("counters %+v, server got %d", c, len(srv.series()))
	}
}

func TestPyroscopeUnreachableServers(t *testing.T) {
	for name, u := range map[string]string{
		"unresolvable": "http://vigil-no-such-host.invalid:4040",
		"refused":      "http://" + refusedAddr(t),
		"timeout":      "http://" + silentAddr(t),
	} {
		for _, api := range []string{PyroscopePush, PyroscopeIngest} {
			py, err := NewPyroscope(PyroscopeConfig{URL: u, API: api, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			err = py.Send(context.Background(), []Profile{testProfile(t, "api", testStart, 0)})
			if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "sink pyroscope "+u) {
				t.Errorf("%s, api %s: %v, want a retryable error naming the sink and URL", name, api, err)
			}
		}
	}
}

func TestPyroscopeConfigErrors(t *testing.T) {
	for _, cfg := range []PyroscopeConfig{
		{},
		{URL: "pyroscope:4040"},
		{URL: "http://p:4040", BearerToken: "t", Username: "u"},
		{URL: "http://p:4040", API: "grpc"},
	} {
		if _, err := NewPyroscope(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestLabelNames(t *testing.T) {
	for in, want := range map[string]string{
		"host.name": "host_name", "__name__": "_name__", "_x": "_x", "1a": "_1a", "a-b c": "a_b_c",
		"ünï": "_n_", "___": "", "ok_9": "ok_9", "..x": "_x",
	} {
		if got := labelName(in); got != want {
			t.Errorf("labelName(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("é", maxLabelValue)
	if v := labelValue(long); len(v) > maxLabelValue || !strings.HasPrefix(long, v) {
		t.Errorf("labelValue kept %d bytes", len(v))
	}
	attrs := map[string]string{}
	for i := range 40 {
		attrs[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
	}
	if n := len(seriesLabels(&Profile{Service: "s", Attrs: attrs}, nil, "process_cpu")); n != maxLabels {
		t.Errorf("%d labels, want the cap %d", n, maxLabels)
	}
	for _, l := range seriesLabels(&Profile{}, nil, "process_cpu") {
		if l.Name == "service_name" && l.Value != "unknown_service" {
			t.Errorf("service_name of a nameless group is %q", l.Value)
		}
	}
}
