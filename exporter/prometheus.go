package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// promServer serves /metrics for a Prometheus scrape.
type promServer struct {
	ln  net.Listener
	srv *http.Server
}

// LoopbackAddr fills in 127.0.0.1 when addr has no host (":9464"), so the
// scrape endpoint is only reachable from outside when asked for explicitly.
func LoopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("prometheus listen address %q: want host:port, e.g. 127.0.0.1:9464", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// startPrometheus registers a pull reader with its own registry (so nothing
// of the process's default registry leaks in) and serves it on addr.
func startPrometheus(addr string, p *Producer) (*promServer, sdkmetric.Reader, error) {
	addr, err := LoopbackAddr(addr)
	if err != nil {
		return nil, nil, err
	}
	reg := prometheus.NewRegistry()
	reader, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithProducer(p))
	if err != nil {
		return nil, nil, fmt.Errorf("starting prometheus exporter: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = reader.Shutdown(context.Background())
		return nil, nil, fmt.Errorf("prometheus endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s := &promServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go s.serve()
	return s, reader, nil
}

func (s *promServer) serve() {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		slog.Default().Warn("prometheus endpoint stopped", "component", "exporter", "error", err)
	}
}

func (s *promServer) addr() string { return s.ln.Addr().String() }

func (s *promServer) close(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}
