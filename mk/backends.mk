# Real servers for vigil's end-to-end tests, built from Go modules into
# .cache/bin and rebuilt only when their sources or pinned versions change.
# Tests find them through VIGIL_OTELCOL_BIN, VIGIL_VICTORIAMETRICS_BIN and
# VIGIL_PYROSCOPE_BIN (BACKENDS_ENV below) and start their own instances on
# free loopback ports. Prometheus is Debian's package (.ci/run installs it),
# found on PATH.
#
#   make backends         build all three (cold: ~3 min Collector, ~1 min
#                         VictoriaMetrics, ~3 min Pyroscope on 2 cores)
#   make otelcol-sources  regenerate exporter/testdata/otelcol with the Builder

BACKENDS_BIN            ?= $(CURDIR)/.cache/bin
OTELCOL_DIR             := exporter/testdata/otelcol
OTELCOL_BIN             := $(BACKENDS_BIN)/otelcol-vigil
OTELCOL_BUILDER_VERSION := v0.165.0
VICTORIAMETRICS_VERSION := v1.151.0
VICTORIAMETRICS_BIN     := $(BACKENDS_BIN)/victoria-metrics
# The Apache-2.0 Pyroscope server (the proxy serves no 1.x server module);
# godeltaprof replaces a dependency that no longer compiles (mk/pyroscope.sh).
PYROSCOPE_VERSION       := v0.37.2
GODELTAPROF_VERSION     := v0.1.9
# The pins are in the file name, so changing one builds a new binary and
# editing anything else here rebuilds nothing.
PYROSCOPE_BIN           := $(BACKENDS_BIN)/pyroscope-$(PYROSCOPE_VERSION)-godeltaprof-$(GODELTAPROF_VERSION)
BACKENDS_ENV            := VIGIL_OTELCOL_BIN=$(OTELCOL_BIN) VIGIL_VICTORIAMETRICS_BIN=$(VICTORIAMETRICS_BIN) \
                           VIGIL_PYROSCOPE_BIN=$(PYROSCOPE_BIN)

.PHONY: backends otelcol-sources

backends: $(OTELCOL_BIN) $(VICTORIAMETRICS_BIN) $(PYROSCOPE_BIN)

# The Collector sources are a module of their own (the main module's ./...
# skips them); building needs only the module proxy and the Go cache.
$(OTELCOL_BIN): $(wildcard $(OTELCOL_DIR)/*.go) $(OTELCOL_DIR)/go.mod $(OTELCOL_DIR)/go.sum
	@mkdir -p $(BACKENDS_BIN)
	cd $(OTELCOL_DIR) && go build -trimpath -o $@ .

# The version is pinned in this file, so the binary is rebuilt when it changes.
$(VICTORIAMETRICS_BIN): mk/backends.mk
	@mkdir -p $(BACKENDS_BIN)
	GOBIN=$(BACKENDS_BIN) go install github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics@$(VICTORIAMETRICS_VERSION)
	@touch $@

$(PYROSCOPE_BIN): mk/pyroscope.sh
	@mkdir -p $(BACKENDS_BIN)
	bash mk/pyroscope.sh $@ $(PYROSCOPE_VERSION) $(GODELTAPROF_VERSION)

# The Builder's own `go mod tidy` fails (a test-only dependency of the file
# exporter is not served by the proxy) after the sources are written, so its
# failure is expected here and `go mod tidy -e` finishes the job.
otelcol-sources:
	GOBIN=$(BACKENDS_BIN) go install go.opentelemetry.io/collector/cmd/builder@$(OTELCOL_BUILDER_VERSION)
	cd $(OTELCOL_DIR) && { $(BACKENDS_BIN)/builder --config builder-config.yaml --skip-compilation || true; } \
		&& go mod tidy -e && gofmt -w *.go
