package exporter

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/vigil-ebpf/vigil/bpf/hist"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestBackendDownRetriesWithinBoundAndCountsFailure(t *testing.T) {
	for _, proto := range []string{"grpc", "http/protobuf"} {
		t.Run(proto, func(t *testing.T) {
			env := map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + closedPort(t),
				"OTEL_EXPORTER_OTLP_PROTOCOL": proto,
				"OTEL_METRIC_EXPORT_INTERVAL": "1000",
				"OTEL_METRIC_EXPORT_TIMEOUT":  "1500",
			}
			cfg, err := ConfigFromEnv(envOf(env))
			if err != nil {
				t.Fatal(err)
			}
			src := &fakeSource{start: time.Now()}
			src.set([]hist.Reading{readReading(1000)}, nil)
			p, err := New(context.Background(), cfg, []Source{src}, Options{Version: "t"})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(context.Background())
			// The SDK's retry loop keeps going until its bound (1 s here, the
			// interval); the test allows generous slack for a busy machine.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := p.ForceFlush(ctx); err == nil {
				t.Fatal("export to a closed port succeeded")
			}
			if ctx.Err() != nil {
				t.Fatal("export retries were not bounded")
			}
			sms, _ := p.producer.Produce(context.Background())
			rm := metricdata.ResourceMetrics{ScopeMetrics: sms}
			checkSum(t, rm, MetricExportFailures,
				attribute.NewSet(attribute.String(AttrExporter, otlpExporterName(Protocol(proto)))), 1)
		})
	}
}

func TestHTTPRetriesWhileBackendIsUnavailable(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable) // e.g. a Collector restarting
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	cfg, err := ConfigFromEnv(envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL,
		"OTEL_METRIC_EXPORT_INTERVAL": "10000",
		"OTEL_METRIC_EXPORT_TIMEOUT":  "10000",
	}))
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{start: time.Now()}
	src.set([]hist.Reading{readReading(1000)}, nil)
	p, err := New(context.Background(), cfg, []Source{src}, Options{Version: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatalf("export failed although the backend came back: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d requests, want 3 (two refused with 503, retried with backoff)", n)
	}
	sms, _ := p.producer.Produce(context.Background())
	checkSum(t, metricdata.ResourceMetrics{ScopeMetrics: sms}, MetricExportFailures,
		attribute.NewSet(attribute.String(AttrExporter, "otlp_http")), 0)
}
