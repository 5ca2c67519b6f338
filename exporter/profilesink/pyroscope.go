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

// PyroscopeConfig is the sinks.pyroscope configuration.
type PyroscopeConfig struct {
	URL         string // e.g. http://pyroscope:4040 (a path prefix is kept)
	TenantID    string // sent as X-Scope-OrgID when set
	Username    string // basic auth, exclusive with BearerToken
	Password    string
	BearerToken string
	Labels      map[string]string // extra labels on every profile
	Timeout     time.Duration     // per push; 10s when zero
}

// Pyroscope pushes profiles with the push.v1 Connect API
// (/push.v1.PusherService/Push), the API Pyroscope's own agents use rather
// than the older /ingest form: one request carries a whole interval's
// groups, each as a labelled series with its gzipped pprof, and labels
// travel as structured pairs instead of the name{k=v} query syntax that
// needs its own escaping. Profiles follow Pyroscope's CPU conventions:
// __name__=process_cpu, service_name, and __delta__=false because each
// profile already covers only its own interval.
type Pyroscope struct {
	url    string
	client pushv1connect.PusherServiceClient
	http   *http.Client
	labels []*typesv1.LabelPair // extra labels, sanitized once
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
	return &Pyroscope{
		url:    base,
		client: pushv1connect.NewPusherServiceClient(hc, base),
		http:   hc,
		labels: sanitizeLabels(cfg.Labels),
	}, nil
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
	return strings.TrimSuffix(u.String(), "/"), nil
}

func (p *Pyroscope) Name() string { return "pyroscope " + p.url }

func (p *Pyroscope) Close() error {
	p.http.CloseIdleConnections()
	return nil
}

// Send pushes batch as one request, one series per process group.
func (p *Pyroscope) Send(ctx context.Context, batch []Profile) error {
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
	var buf bytes.Buffer
	if err := pr.Pprof.Write(&buf); err != nil { // gzipped, as the API expects
		return nil, fmt.Errorf("encoding profile of %q: %w", pr.Service, err)
	}
	return &pushv1.RawProfileSeries{
		Labels:  seriesLabels(pr, p.labels),
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
