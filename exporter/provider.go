package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Options are what the caller adds to a Config.
type Options struct {
	Version string    // vigil's version: service.version and the scope version
	Console io.Writer // where the console exporter writes (default stdout)
}

// Provider is the MeterProvider and the exporters around one Producer.
type Provider struct {
	producer *Producer
	mp       *sdkmetric.MeterProvider
	prom     *promServer // nil unless a scrape endpoint was asked for
}

// New starts the exporters cfg asks for, all reading sources through one
// Producer. Shutdown flushes a final export.
func New(ctx context.Context, cfg Config, sources []Source, opts Options) (*Provider, error) {
	res, err := NewResource(ctx, opts.Version)
	if err != nil {
		return nil, err
	}
	p := &Provider{producer: NewProducer(sources, cfg.Histogram, opts.Version)}
	readers, err := p.readers(ctx, cfg, opts)
	if err != nil {
		p.closeReaders(ctx, readers)
		return nil, err
	}
	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	for _, r := range readers {
		mpOpts = append(mpOpts, sdkmetric.WithReader(r))
	}
	p.mp = sdkmetric.NewMeterProvider(mpOpts...)
	return p, nil
}

func (p *Provider) readers(ctx context.Context, cfg Config, opts Options) ([]sdkmetric.Reader, error) {
	var out []sdkmetric.Reader
	periodic := func(name string, e sdkmetric.Exporter) {
		out = append(out, sdkmetric.NewPeriodicReader(p.producer.countFailures(name, e),
			sdkmetric.WithInterval(cfg.Interval), sdkmetric.WithTimeout(cfg.Timeout),
			sdkmetric.WithProducer(p.producer)))
	}
	if cfg.OTLP != nil {
		e, err := newOTLPExporter(ctx, *cfg.OTLP, retryBound(cfg))
		if err != nil {
			return out, err
		}
		periodic(otlpExporterName(cfg.OTLP.Protocol), e)
	}
	if cfg.Console {
		e, err := newConsoleExporter(opts.Console)
		if err != nil {
			return out, err
		}
		periodic("console", e)
	}
	if cfg.Prometheus != "" {
		srv, reader, err := startPrometheus(cfg.Prometheus, p.producer)
		if err != nil {
			return out, err
		}
		p.prom = srv
		out = append(out, reader)
	}
	return out, nil
}

// otlpExporterName is the vigil.exporter attribute of export failures.
func otlpExporterName(p Protocol) string {
	if p == ProtocolGRPC {
		return "otlp_grpc"
	}
	return "otlp_http"
}

// retryBound keeps retries of one export within both the export timeout and
// the interval, so a dead backend never makes exports queue up: every export
// carries the cumulative totals, and the next one replaces a lost one.
func retryBound(cfg Config) time.Duration {
	return min(cfg.Timeout, cfg.Interval)
}

// PrometheusAddr is the address the scrape endpoint listens on ("" if none);
// useful when the configured port was 0.
func (p *Provider) PrometheusAddr() string {
	if p.prom == nil {
		return ""
	}
	return p.prom.addr()
}

// ForceFlush collects and exports now on every push exporter.
func (p *Provider) ForceFlush(ctx context.Context) error {
	return p.mp.ForceFlush(ctx)
}

// Shutdown makes a final export and stops every exporter.
func (p *Provider) Shutdown(ctx context.Context) error {
	err := p.mp.Shutdown(ctx)
	if p.prom != nil {
		err = errors.Join(err, p.prom.close(ctx))
	}
	if err != nil {
		return fmt.Errorf("stopping exporters: %w", err)
	}
	return nil
}

// closeReaders releases readers that were made before a later one failed.
func (p *Provider) closeReaders(ctx context.Context, readers []sdkmetric.Reader) {
	for _, r := range readers {
		_ = r.Shutdown(ctx)
	}
	if p.prom != nil {
		_ = p.prom.close(ctx)
	}
}
