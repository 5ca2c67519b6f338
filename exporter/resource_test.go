package exporter

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
)

func TestResourceDescribesVigilAndHost(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci,team=kernel")
	t.Setenv("OTEL_SERVICE_NAME", "")
	r, err := NewResource(context.Background(), "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	want := map[string]string{
		"service.name": "vigil", "service.version": "1.2.3", "host.name": host,
		"os.type": "linux", "os.description": strings.TrimSpace(string(rel)),
		"deployment.environment.name": "ci", "team": "kernel",
	}
	if runtime.GOARCH == "amd64" {
		want["host.arch"] = "amd64"
	}
	set := r.Set()
	for k, v := range want {
		got, ok := set.Value(attribute.Key(k))
		if !ok || got.AsString() != v {
			t.Errorf("%s = %q, want %q", k, got.AsString(), v)
		}
	}
	if _, ok := set.Value("host.arch"); !ok {
		t.Error("no host.arch")
	}
}

func TestResourceAttributesFromEnvOverride(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "host.name=renamed")
	r, err := NewResource(context.Background(), "dev")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Set().Value("host.name"); v.AsString() != "renamed" {
		t.Errorf("host.name = %q, want the operator's value", v.AsString())
	}
}

func TestMalformedResourceAttributesNameTheVariable(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "novalue")
	_, err := NewResource(context.Background(), "dev")
	if err == nil || !strings.Contains(err.Error(), "OTEL_RESOURCE_ATTRIBUTES") {
		t.Errorf("error %v, want one naming OTEL_RESOURCE_ATTRIBUTES", err)
	}
}

func TestHostArchNames(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "x86", "ppc64le": "ppc64", "riscv64": "riscv64"} {
		if got := hostArch(goarch).Value.AsString(); got != want {
			t.Errorf("hostArch(%s) = %s, want %s", goarch, got, want)
		}
	}
}
