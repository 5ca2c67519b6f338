// Package exporter turns the histograms that vigil's latency programs keep in
// the kernel into OpenTelemetry metrics.
//
// There is no polling loop and no SDK instrument: a [Producer] is attached to
// every reader of an sdk/metric MeterProvider and reads its [Source]s at each
// collection, so whatever the reader exports (OTLP over gRPC or HTTP, a
// Prometheus scrape, the console) is exactly what the kernel counted, with
// cumulative temporality and the attach time as start time.
//
// Histograms are OpenTelemetry exponential histograms by default: the kernel
// already buckets with OTel's own boundaries (see package hist), so the data
// points carry the kernel's buckets unchanged. When the standard
// OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION is
// explicit_bucket_histogram, the same buckets are re-bucketed into explicit
// buckets whose bounds are powers of two of a second (see [ExplicitBounds]);
// every such bound is also an exponential bucket boundary at every scale >= 0,
// so the re-bucketing is exact.
package exporter
