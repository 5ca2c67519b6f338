package profilesink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

const defaultPyroscopeTimeout = 10 * time.Second

// The APIs a Pyroscope sink can speak (PyroscopeConfig.API).
const (
	// PyroscopeIngest is the HTTP /ingest API: one profile per request, the
	// pprof as the body, name{labels} in the query. Pyroscope 0.x serves
	// only this one, and 1.x and 2.x still accept it (many of their clients
	// send it), so it is the default: it works with every server.
	PyroscopeIngest = "ingest"
	// PyroscopePush is the push.v1 Connect API of Pyroscope 1.x and later.
	PyroscopePush = "push"
)

// PyroscopeConfig is the sinks.pyroscope configuration.
type PyroscopeConfig struct {
	URL         string // e.g. http://pyroscope:4040 (a path prefix is kept)
	API         string // PyroscopeIngest (when empty) or PyroscopePush
	TenantID    string // sent as X-Scope-OrgID when set
	Username    string // basic auth, exclusive with BearerToken
	Password    string
	BearerToken string
	Labels      map[string]string // extra labels on every profile
	Timeout     time.Duration     // per push; 10s when zero
}

// Pyroscope sends profiles to a Pyroscope server with one of two APIs.
//
// With the push.v1 Connect API (/push.v1.PusherService/Push, Pyroscope 1.x
// and later) one request carries a whole interval's groups, each as a
// labelled series with its gzipped pprof, and labels travel as structured
// pairs. Profiles follow Pyroscope's conventions for their type
// (pyroscopeTypes): for CPU __name__=process_cpu, service_name, and
// __delta__=false because each profile already covers only its own interval.
//
// With /ingest (every Pyroscope version) each group is one request; see
// ingest.go.
type Pyroscope struct {
	url    string
	api    string
	client pushv1connect.PusherServiceClient // PyroscopePush only
	http   *http.Client
	labels []*typesv1.LabelPair // extra labels, sanitized once
	done   delivered            // PyroscopeIngest: the retried batch's finished profiles
}

// NewPyroscope checks the configuration and prepares the client.
func NewPyroscope(cfg PyroscopeConfig) (*Pyroscope, error) {
	base, err := pyroscopeBase(cfg)
	if err != nil {
		return nil, fmt.Errorf("pyroscope sink %s: %w", cfg.URL, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultPyroscopeTimeout
	}
	hc := &http.Client{Timeout: cfg.Timeout, Transport: &authTransport{cfg: cfg, next: http.DefaultTransport.(*http.Transport).Clone()}}
	p := &Pyroscope{url: base, api: cfg.API, http: hc, labels: sanitizeLabels(cfg.Labels)}
	if p.api == "" {
		p.api = PyroscopeIngest
	}
	if p.api == PyroscopePush {
		p.client = pushv1connect.NewPusherServiceClient(hc, base)
	}
	return p, nil
}

func pyroscopeBase(cfg PyroscopeConfig) (string, error) {
	if cfg.URL == "" {
		return "", errors.New("url is empty")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return "", fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("url %q: want http(s)://host[:port]", cfg.URL)
	}
	if cfg.BearerToken != "" && (cfg.Username != "" || cfg.Password != "") {
		return "", errors.New("basic_auth and bearer_token are exclusive")
	}
	if cfg.API != "" && cfg.API != PyroscopeIngest && cfg.API != PyroscopePush {
		return "", fmt.Errorf("api %q: want %s or %s", cfg.API, PyroscopeIngest, PyroscopePush)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

func (p *Pyroscope) Name() string { return "pyroscope " + p.url }

func (p *Pyroscope) Close() error {
	p.http.CloseIdleConnections()
	return nil
}

// Send delivers batch with the configured API.
func (p *Pyroscope) Send(ctx context.Context, batch []Profile) error {
	if p.api == PyroscopePush {
		return p.push(ctx, batch)
	}
	return p.ingestBatch(ctx, batch)
}

// push sends batch as one request, one series per process group.
func (p *Pyroscope) push(ctx context.Context, batch []Profile) error {
	req := &pushv1.PushRequest{Series: make([]*pushv1.RawProfileSeries, 0, len(batch))}
	for i := range batch {
		s, err := p.series(&batch[i])
		if err != nil {
			return fmt.Errorf("sink %s: %w", p.Name(), Permanent(err))
		}
		req.Series = append(req.Series, s)
	}
	_, err := p.client.Push(ctx, connect.NewRequest(req))
	if err == nil {
		return nil
	}
	if connect.CodeOf(err) == connect.CodeInvalidArgument {
		err = Permanent(err) // the server refused the data itself (labels, size)
	}
	return fmt.Errorf("sink %s: %w", p.Name(), err)
}

func (p *Pyroscope) series(pr *Profile) (*pushv1.RawProfileSeries, error) {
	if pr.Pprof == nil {
		return nil, fmt.Errorf("profile of %q has no pprof", pr.Service)
	}
	typ, err := pyroscopeTypeOf(pr)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := pr.Pprof.Write(&buf); err != nil { // gzipped, as the API expects
		return nil, fmt.Errorf("encoding profile of %q: %w", pr.Service, err)
	}
	return &pushv1.RawProfileSeries{
		Labels:  seriesLabels(pr, p.labels, typ.pushName),
		Samples: []*pushv1.RawSample{{RawProfile: buf.Bytes(), ID: uuid.NewString()}},
	}, nil
}

// authTransport adds the tenant and credentials to every request.
type authTransport struct {
	cfg  PyroscopeConfig
	next http.RoundTripper
}

func (t *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if t.cfg.TenantID != "" {
		r.Header.Set("X-Scope-OrgID", t.cfg.TenantID)
	}
	switch {
	case t.cfg.BearerToken != "":
		r.Header.Set("Authorization", "Bearer "+t.cfg.BearerToken)
	case t.cfg.Username != "" || t.cfg.Password != "":
		r.SetBasicAuth(t.cfg.Username, t.cfg.Password)
	}
	return t.next.RoundTrip(r)
}
