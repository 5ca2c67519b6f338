// Package config is vigil's configuration: the Go types of every key of
// vigil.yaml, Default as the one source of default values, a strict loader
// (unknown keys, wrong types and duplicate keys are errors with their path and
// line), Set for flags written on top by key path, and Validate, which reports
// every problem at once.
//
// The order is always: Default, then the file (Load or Parse), then flags
// (Set), then Validate. The standard OTEL_* environment variables are applied
// by the exporters, not here, so the file never has to repeat them.
//
// The package depends on the standard library and YAML only.
package config
