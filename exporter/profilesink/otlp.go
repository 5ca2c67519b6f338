package profilesink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	backoffConfig "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// OTLP protocols (the sinks.otlp.protocol values).
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// ProfilesPath is where an OTLP/HTTP receiver takes profiles while the
// signal is in Development.
const ProfilesPath = "/v1development/profiles"

const defaultOTLPTimeout = 10 * time.Second

// OTLPConfig is the sinks.otlp configuration.
type OTLPConfig struct {
	// Endpoint is a URL (http:// means plaintext, https:// TLS) or, for
	// gRPC, host:port (TLS unless Insecure). For HTTP a URL whose path
	// ends in /v1development/profiles is used as is; otherwise that path
	// is appended, as OTEL_EXPORTER_OTLP_ENDPOINT is treated.
	Endpoint string
	Protocol string // ProtocolGRPC (default) or ProtocolHTTPProtobuf
	Insecure bool   // plaintext when Endpoint has no scheme
	Headers  map[string]string
	Timeout  time.Duration // per export; 10s when zero
}

// OTLP sends profiles to an OpenTelemetry Collector (or any OTLP profiles
// receiver) over gRPC or HTTP, encoded with the pdata generation of the
// Collector the project tests against, since the Development wire format
// changes between versions.
type OTLP struct {
	cfg      OTLPConfig
	target   string // what errors name: the gRPC target or the HTTP URL
	grpc     *grpc.ClientConn
	client   pprofileotlp.GRPCClient
	http     *otlpHTTP
	rejected atomic.Uint64
}

// NewOTLP checks the configuration and prepares the client; it does not
// connect (a Collector that is down at start is the queue's business).
func NewOTLP(cfg OTLPConfig) (*OTLP, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultOTLPTimeout
	}
	o := &OTLP{cfg: cfg}
	var err error
	switch cfg.Protocol {
	case ProtocolGRPC, "":
		err = o.dialGRPC()
	case ProtocolHTTPProtobuf:
		o.http, err = newOTLPHTTP(cfg)
		if err == nil {
			o.target = o.http.url
		}
	default:
		err = fmt.Errorf("protocol must be %s or %s (got %q)", ProtocolGRPC, ProtocolHTTPProtobuf, cfg.Protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp sink %s: %w", cfg.Endpoint, err)
	}
	return o, nil
}

func (o *OTLP) Name() string { return "otlp " + o.target }

// Rejected is how many profiles receivers reported refusing in partial
// successes: delivered requests whose data was (partly) not kept.
func (o *OTLP) Rejected() uint64 { return o.rejected.Load() }

func (o *OTLP) dialGRPC() error {
	target, tlsOn, err := grpcTarget(o.cfg.Endpoint, o.cfg.Insecure)
	if err != nil {
		return err
	}
	creds := insecure.NewCredentials()
	if tlsOn {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	o.grpc, err = grpc.NewClient(target, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.UseCompressor(gzip.Name)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: reconnectBackoff, MinConnectTimeout: 5 * time.Second}))
	if err != nil {
		return err
	}
	o.target = target
	o.client = pprofileotlp.NewGRPCClient(o.grpc)
	return nil
}

// reconnectBackoff caps how long the connection waits between dial
// attempts. gRPC's default grows to two minutes, so a Collector that
// restarted would stay unreachable long after it is back, whatever the
// queue's own retry schedule; a few seconds keeps the two in step.
var reconnectBackoff = backoffConfig.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second}

// grpcTarget turns an endpoint into host:port and whether to use TLS.
func grpcTarget(endpoint string, plaintext bool) (string, bool, error) {
	if endpoint == "" {
		return "", false, errors.New("endpoint is empty")
	}
	tlsOn := !plaintext
	hostport := endpoint
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return "", false, fmt.Errorf("endpoint: %w", err)
		}
		switch u.Scheme {
		case "http":
			tlsOn = false
		case "https":
			tlsOn = true
		default:
			return "", false, fmt.Errorf("endpoint %q: scheme must be http or https", endpoint)
		}
		hostport = u.Host
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(strings.Trim(hostport, "[]"), "4317")
	}
	return hostport, tlsOn, nil
}

// Send exports batch as one request.
func (o *OTLP) Send(ctx context.Context, batch []Profile) error {
	profiles, err := toOTLP(batch)
	if err != nil {
		return fmt.Errorf("sink %s: %w", o.Name(), Permanent(err))
	}
	req := pprofileotlp.NewExportRequestFromProfiles(profiles)
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	var resp pprofileotlp.ExportResponse
	if o.http != nil {
		resp, err = o.http.export(ctx, req)
	} else {
		resp, err = o.exportGRPC(ctx, req)
	}
	if err != nil {
		return fmt.Errorf("sink %s: %w", o.Name(), err)
	}
	if n := resp.PartialSuccess().RejectedProfiles(); n > 0 {
		o.rejected.Add(uint64(n))
	}
	return nil
}

func (o *OTLP) exportGRPC(ctx context.Context, req pprofileotlp.ExportRequest) (pprofileotlp.ExportResponse, error) {
	if len(o.cfg.Headers) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, metadata.New(o.cfg.Headers))
	}
	resp, err := o.client.Export(ctx, req)
	if err == nil {
		return resp, nil
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange,
		codes.Unavailable, codes.DataLoss, codes.ResourceExhausted:
		return resp, err // transient: the queue retries
	case codes.Unimplemented:
		return resp, Permanent(fmt.Errorf("receiver takes no profiles (does it run with --feature-gates=service.profilesSupport and a profiles pipeline?): %w", err))
	default:
		return resp, Permanent(err)
	}
}

func (o *OTLP) Close() error {
	if o.grpc != nil {
		return o.grpc.Close()
	}
	o.http.client.CloseIdleConnections()
	return nil
}
