package exporter

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// NewResource describes this host and vigil: service.name=vigil,
// service.version, host.name, host.arch, os.type, os.description (the kernel
// release, which is what decides which BPF hooks work), the SDK's own
// attributes, and on top whatever OTEL_RESOURCE_ATTRIBUTES and
// OTEL_SERVICE_NAME say.
func NewResource(ctx context.Context, version string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{
		semconv.ServiceName("vigil"),
		semconv.ServiceVersion(version),
		hostArch(runtime.GOARCH),
		semconv.OSTypeLinux,
	}
	if h, err := os.Hostname(); err == nil {
		attrs = append(attrs, semconv.HostName(h))
	}
	if rel, err := kernelRelease(); err == nil {
		attrs = append(attrs, semconv.OSDescription(rel))
	}
	r, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attrs...),
		resource.WithFromEnv(), // last, so the operator's attributes win
	)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return r, nil
}

// kernelRelease reads the running kernel's release, e.g. "6.18.0-1-amd64".
func kernelRelease() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "", fmt.Errorf("reading kernel release: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// hostArch maps Go's GOARCH to the semantic-convention value of host.arch.
func hostArch(goarch string) attribute.KeyValue {
	switch goarch {
	case "amd64":
		return semconv.HostArchAMD64
	case "arm64":
		return semconv.HostArchARM64
	case "386":
		return semconv.HostArchX86
	case "arm":
		return semconv.HostArchARM32
	case "ppc64", "ppc64le":
		return semconv.HostArchPPC64
	case "s390x":
		return semconv.HostArchS390x
	}
	return semconv.HostArchKey.String(goarch)
}
