#!/usr/bin/env bash
# Builds the Apache-2.0 Pyroscope server (github.com/pyroscope-io/pyroscope)
# into the file named by $1, at the version $2, from the Go module proxy.
#
# Its dependency github.com/pyroscope-io/godeltaprof v0.1.0 no longer compiles
# with Go 1.21 or later (undefined: runtime_cyclesPerSecond) and the proxy
# serves no newer version of that path. The same API lives on as
# github.com/grafana/pyroscope-go/godeltaprof: a copy of it, renamed to the old
# path, replaces the old module. The server is built inside a copy of its own
# module so that its go.mod (not ours) applies.
set -euo pipefail
out=$1
version=$2
deltaprof_version=$3
work=$(dirname "$out")/../src/pyroscope-$version

moddir() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'; }

rm -rf "$work"
mkdir -p "$(dirname "$work")"
cp -r "$(moddir "github.com/pyroscope-io/pyroscope@$version")" "$work"
chmod -R u+w "$work"

delta=$work/third_party/godeltaprof
mkdir -p "$(dirname "$delta")"
cp -r "$(moddir "github.com/grafana/pyroscope-go/godeltaprof@$deltaprof_version")" "$delta"
chmod -R u+w "$delta"
rm -rf "$delta/example" "$delta/http"
grep -rl 'github.com/grafana/pyroscope-go/godeltaprof' "$delta" |
  xargs sed -i 's#github.com/grafana/pyroscope-go/godeltaprof#github.com/pyroscope-io/godeltaprof#g'

cd "$work"
go mod edit -replace github.com/pyroscope-io/godeltaprof=./third_party/godeltaprof
GOFLAGS="${GOFLAGS:-} -mod=mod" go build -trimpath -o "$out.tmp" ./cmd/pyroscope
mv "$out.tmp" "$out"
