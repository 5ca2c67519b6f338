package exporter

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"google.golang.org/grpc/credentials"
)

// Retry backoff of the OTLP exporters; the total is bounded per export.
const (
	retryInitial = 500 * time.Millisecond
	retryMax     = 5 * time.Second
)

// newOTLPExporter passes every setting explicitly (options win over the
// environment), so what was validated is what runs.
func newOTLPExporter(ctx context.Context, c OTLPConfig, retryFor time.Duration) (sdkmetric.Exporter, error) {
	var (
		e   sdkmetric.Exporter
		err error
	)
	if c.Protocol == ProtocolGRPC {
		e, err = otlpmetricgrpc.New(ctx, grpcOptions(c, retryFor)...)
	} else {
		e, err = otlpmetrichttp.New(ctx, httpOptions(c, retryFor)...)
	}
	if err != nil {
		return nil, fmt.Errorf("starting OTLP %s exporter to %s: %w", c.Protocol, c.Endpoint.Redacted(), err)
	}
	return e, nil
}

func grpcOptions(c OTLPConfig, retryFor time.Duration) []otlpmetricgrpc.Option {
	opts := []otlpmetricgrpc.Option{
		otlpmetricgrpc.WithEndpoint(c.Endpoint.Host),
		otlpmetricgrpc.WithTimeout(c.Timeout),
		otlpmetricgrpc.WithHeaders(c.Headers),
		otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{
			Enabled: true, InitialInterval: retryInitial, MaxInterval: retryMax, MaxElapsedTime: retryFor}),
	}
	switch {
	case c.Endpoint.Scheme == "http":
		opts = append(opts, otlpmetricgrpc.WithInsecure())
	case c.TLS != nil:
		opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(c.TLS)))
	}
	if c.Compression != "" {
		opts = append(opts, otlpmetricgrpc.WithCompressor(c.Compression))
	}
	return opts
}

func httpOptions(c OTLPConfig, retryFor time.Duration) []otlpmetrichttp.Option {
	opts := []otlpmetrichttp.Option{
		otlpmetrichttp.WithEndpoint(c.Endpoint.Host),
		otlpmetrichttp.WithURLPath(c.Endpoint.EscapedPath()),
		otlpmetrichttp.WithTimeout(c.Timeout),
		otlpmetrichttp.WithHeaders(c.Headers),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{
			Enabled: true, InitialInterval: retryInitial, MaxInterval: retryMax, MaxElapsedTime: retryFor}),
	}
	switch {
	case c.Endpoint.Scheme == "http":
		opts = append(opts, otlpmetrichttp.WithInsecure())
	case c.TLS != nil:
		opts = append(opts, otlpmetrichttp.WithTLSClientConfig(c.TLS))
	}
	if c.Compression == "gzip" {
		opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	}
	return opts
}

func newConsoleExporter(w io.Writer) (sdkmetric.Exporter, error) {
	if w == nil {
		w = os.Stdout
	}
	e, err := stdoutmetric.New(stdoutmetric.WithWriter(w), stdoutmetric.WithPrettyPrint())
	if err != nil {
		return nil, fmt.Errorf("starting console exporter: %w", err)
	}
	return e, nil
}
