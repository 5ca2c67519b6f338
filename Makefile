# vigil: build, generate, test, bench, lint.
#
#   make build            static binary in bin/vigil (no clang needed: BPF objects are committed)
#   sudo make test        installs what the tests need (Debian), builds the test servers,
#                         runs every test; privileged ones need root and run for real
#   make generate         rebuild the BPF objects with clang-19 (bpf2go)
#   make check-generated  fail when the committed BPF objects are stale
#   sudo make bench       benchmarks, side by side with bpftrace, perf, addr2line
#   make lint             gofmt, go mod tidy, go vet and staticcheck (pinned in go.mod)

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN     := bin/vigil
# Extra flags for go test, e.g. TESTFLAGS='-run TestProfile -v'.
TESTFLAGS ?=
# Long side-by-side benchmarks run once at the default benchtime; short
# ones repeat until a second has passed.
BENCHFLAGS ?=

.PHONY: all build generate check-generated setup test test-unit bench lint clean

all: build

include mk/backends.mk
include deploy/install.mk
-include bpf/kernels/kernels.mk

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/vigil

generate:
	$(GO) generate ./bpf/...

check-generated: generate
	@git diff --exit-code --stat -- bpf/ || { echo "BPF objects are stale: run 'make generate' and commit the result"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- bpf/ | grep -E '_bpfel\.(go|o)$$')" || { echo "untracked generated BPF files: commit them"; exit 1; }

# The set-up 'test' runs first: installs the Debian packages the tests need
# (mk/packages.txt) as root on Debian, or says what to install and stops.
# 'make test SETUP=' skips it (not Debian, everything installed by hand).
SETUP ?= mk/setup.sh

setup:
	$(SETUP)

# Every test, after the set-up and 'backends' (in that order, also under -j).
# End-to-end tests start their own servers from the binaries that 'backends'
# builds into .cache/bin. The Python profiling tests take two interpreters
# from Debian's archive into .cache/pythons the first time (internal/pythons;
# about 20 MB). The deployment tests are a module of their own
# (deploy/go.mod keeps their dependencies out of the agent's), which the root
# ./... skips, so they run in a step of their own.
test:
	$(SETUP)
	@$(MAKE) --no-print-directory backends
	$(BACKENDS_ENV) $(GO) test -count=1 $(TESTFLAGS) ./...
	cd deploy && $(BACKENDS_ENV) $(GO) test -count=1 $(TESTFLAGS) ./...

# Only what needs neither root nor servers (quick feedback while editing).
test-unit:
	$(GO) test -count=1 -short $(TESTFLAGS) ./...
	cd deploy && $(GO) test -count=1 -short $(TESTFLAGS) ./...

bench: build
	$(GO) test -run '^$$' -bench . $(BENCHFLAGS) ./...

# Both modules: the agent's and deploy/'s. staticcheck is pinned by the tool
# directive in go.mod; 'go tool -n' builds it (cached) and names the binary,
# so deploy/ runs the same one. The generated Collector sources under
# exporter/testdata/otelcol are left to the Builder.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy'"; exit 1; }
	@cd deploy && $(GO) mod tidy -diff || { echo "deploy/go.mod/go.sum are not tidy: run 'go mod tidy' in deploy/"; exit 1; }
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...
	staticcheck=$$($(GO) tool -n staticcheck) && $$staticcheck ./... && cd deploy && $$staticcheck ./...

clean:
	rm -rf bin
