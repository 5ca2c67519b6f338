package exporter

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Protocol is the OTLP transport.
type Protocol string

const (
	ProtocolGRPC Protocol = "grpc"
	ProtocolHTTP Protocol = "http/protobuf"
)

// OTLPConfig is where and how to push OTLP metrics.
type OTLPConfig struct {
	Protocol    Protocol
	Endpoint    *url.URL // for HTTP the full URL including the metrics path
	Headers     map[string]string
	Timeout     time.Duration // per export, retries included
	Compression string        // "gzip" or ""
	TLS         *tls.Config   // nil: system roots; unused for plain http
}

// Config says which exporters run and how.
type Config struct {
	OTLP      *OTLPConfig // nil: no OTLP export
	Histogram HistogramKind
	// Interval and Timeout of the periodic OTLP/console readers.
	Interval time.Duration
	Timeout  time.Duration
	// Prometheus is the listen address of the scrape endpoint, "" for none.
	Prometheus string
	// Console turns on the stdout exporter (for debugging).
	Console bool
}

// Defaults of the OpenTelemetry specification.
const (
	defaultInterval    = 60 * time.Second
	defaultTimeout     = 30 * time.Second
	defaultOTLPTimeout = 10 * time.Second
	defaultPromHost    = "localhost"
	defaultPromPort    = "9464"
)

// ConfigFromEnv reads the standard OTEL_* variables through getenv (os.Getenv
// in production). OTLP export is on when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is set. Every malformed variable is
// reported, each error naming its variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	e := envReader{get: getenv}
	cfg := Config{
		Histogram: e.histogramKind(),
		Interval:  e.millis("OTEL_METRIC_EXPORT_INTERVAL", defaultInterval),
		Timeout:   e.millis("OTEL_METRIC_EXPORT_TIMEOUT", defaultTimeout),
	}
	exporters := e.exporterSet()
	if exporters["otlp"] {
		cfg.OTLP = e.otlp()
	}
	cfg.Console = exporters["console"]
	if exporters["prometheus"] {
		cfg.Prometheus = e.prometheusAddr()
	}
	return cfg, errors.Join(e.errs...)
}

// envReader collects every problem instead of stopping at the first.
type envReader struct {
	get  func(string) string
	errs []error
}

func (e *envReader) fail(name, value, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s=%q: %s", name, value, fmt.Sprintf(format, args...)))
}

// metricsOr returns the metrics-specific variable when set, else the
// general one: OTEL_EXPORTER_OTLP_METRICS_<suffix> over OTEL_EXPORTER_OTLP_<suffix>.
func (e *envReader) metricsOr(suffix string) (name, value string) {
	name = "OTEL_EXPORTER_OTLP_METRICS_" + suffix
	if v := strings.TrimSpace(e.get(name)); v != "" {
		return name, v
	}
	name = "OTEL_EXPORTER_OTLP_" + suffix
	return name, strings.TrimSpace(e.get(name))
}

func (e *envReader) millis(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(e.get(name))
	if v == "" {
		return def
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		e.fail(name, v, "want a positive whole number of milliseconds")
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

func (e *envReader) histogramKind() HistogramKind {
	const name = "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION"
	switch v := strings.TrimSpace(e.get(name)); v {
	case "", "base2_exponential_bucket_histogram":
		return Exponential
	case "explicit_bucket_histogram":
		return Explicit
	default:
		e.fail(name, v, "want explicit_bucket_histogram or base2_exponential_bucket_histogram")
		return Exponential
	}
}

// exporterSet reads OTEL_METRICS_EXPORTER (otlp, prometheus, console, none;
// comma separated). Unset means otlp, which only runs when an endpoint is set.
func (e *envReader) exporterSet() map[string]bool {
	const name = "OTEL_METRICS_EXPORTER"
	v := strings.TrimSpace(e.get(name))
	if v == "" {
		v = "otlp"
	}
	set := map[string]bool{}
	for _, x := range strings.Split(v, ",") {
		switch x = strings.TrimSpace(x); x {
		case "otlp", "prometheus", "console":
			set[x] = true
		case "none":
			return map[string]bool{}
		default:
			e.fail(name, v, "unknown exporter %q (want otlp, prometheus, console or none)", x)
		}
	}
	return set
}

func (e *envReader) prometheusAddr() string {
	host := strings.TrimSpace(e.get("OTEL_EXPORTER_PROMETHEUS_HOST"))
	if host == "" {
		host = defaultPromHost
	}
	port := strings.TrimSpace(e.get("OTEL_EXPORTER_PROMETHEUS_PORT"))
	if port == "" {
		port = defaultPromPort
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		e.fail("OTEL_EXPORTER_PROMETHEUS_PORT", port, "want a port number between 1 and 65535")
	}
	return host + ":" + port
}

// otlp returns nil when neither endpoint variable is set.
func (e *envReader) otlp() *OTLPConfig {
	protoName, proto := e.metricsOr("PROTOCOL")
	c := &OTLPConfig{Protocol: ProtocolHTTP}
	switch Protocol(proto) {
	case "", ProtocolHTTP:
	case ProtocolGRPC:
		c.Protocol = ProtocolGRPC
	default:
		e.fail(protoName, proto, "want grpc or http/protobuf")
	}
	c.Endpoint = e.endpoint(c.Protocol)
	if c.Endpoint == nil {
		return nil
	}
	c.Headers = e.headers()
	c.Timeout = e.otlpTimeout()
	c.Compression = e.compression()
	c.TLS = e.tlsConfig(c.Endpoint)
	return c
}

// endpoint applies the specification's rule: the general endpoint is a base
// URL to which HTTP appends v1/metrics; the metrics-specific one is used as is.
func (e *envReader) endpoint(p Protocol) *url.URL {
	name, v := e.metricsOr("ENDPOINT")
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	switch {
	case err != nil:
		e.fail(name, v, "not a URL: %v", err)
		return nil
	case u.Scheme != "http" && u.Scheme != "https":
		e.fail(name, v, "want a URL starting with http:// or https://, like http://localhost:4318")
		return nil
	case u.Hostname() == "":
		e.fail(name, v, "the URL has no host")
		return nil
	}
	if p == ProtocolHTTP && name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/metrics"
	}
	e.checkInsecure(u)
	return u
}

// checkInsecure validates OTEL_EXPORTER_OTLP_INSECURE: the URL scheme
// decides, so only a contradiction (insecure with https) is an error.
func (e *envReader) checkInsecure(u *url.URL) {
	name, v := e.metricsOr("INSECURE")
	if v == "" {
		return
	}
	insecure, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(name, v, "want true or false")
		return
	}
	if insecure && u.Scheme == "https" {
		e.fail(name, v, "contradicts the https endpoint %s", u.Redacted())
	}
}

func (e *envReader) headers() map[string]string {
	name, v := e.metricsOr("HEADERS")
	if v == "" {
		return nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		dk, errK := url.PathUnescape(k)
		dv, errV := url.PathUnescape(strings.TrimSpace(val))
		if !ok || k == "" || errK != nil || errV != nil {
			e.fail(name, "…", "want comma-separated key=value pairs (values URL-encoded); bad pair %q", redactPair(kv))
			continue
		}
		out[dk] = dv
	}
	return out
}

// redactPair keeps header values (often credentials) out of error messages.
func redactPair(kv string) string {
	if k, _, ok := strings.Cut(kv, "="); ok {
		return k + "=…"
	}
	return kv
}

func (e *envReader) otlpTimeout() time.Duration {
	name, v := e.metricsOr("TIMEOUT")
	if v == "" {
		return defaultOTLPTimeout
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		e.fail(name, v, "want a positive whole number of milliseconds")
		return defaultOTLPTimeout
	}
	return time.Duration(ms) * time.Millisecond
}

func (e *envReader) compression() string {
	name, v := e.metricsOr("COMPRESSION")
	switch v {
	case "", "none":
		return ""
	case "gzip":
		return "gzip"
	}
	e.fail(name, v, "want gzip or none")
	return ""
}

// tlsConfig loads the CA and client certificate files, if any are named.
func (e *envReader) tlsConfig(u *url.URL) *tls.Config {
	caName, ca := e.metricsOr("CERTIFICATE")
	certName, cert := e.metricsOr("CLIENT_CERTIFICATE")
	keyName, key := e.metricsOr("CLIENT_KEY")
	if ca == "" && cert == "" && key == "" {
		return nil
	}
	if u.Scheme != "https" {
		e.fail(caName+"/"+certName, ca+cert, "TLS files given but the endpoint %s is plain http", u.Redacted())
		return nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pool, err := loadCertPool(ca)
		if err != nil {
			e.fail(caName, ca, "%v", err)
		}
		c.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		e.fail(certName, cert, "a client certificate needs both %s and %s", certName, keyName)
		return c
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			e.fail(certName, cert, "loading client certificate with key %s: %v", key, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c
}

func loadCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate found in the file")
	}
	return pool, nil
}
