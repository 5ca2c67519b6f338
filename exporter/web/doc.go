// Package web is vigil's embedded local view: with no backend configured,
// `vigil run` keeps the last hour of CPU profiles and latency histograms in
// a bounded Store and serves one page on a loopback address with a flame
// graph of the recent profile, the latency histograms as charts, and
// vigil's own health counters.
//
// The Store is a profilesink.Sink, so the agent feeds it like any other
// sink; AddReadings and SetSelf take the histograms and self metrics at each
// collection. The Server answers GET requests only: the page, its scripts
// (no inline code, so the Content-Security-Policy can forbid it) and a small
// JSON API; /api/profile.pb.gz is the merged pprof of the window, so
// `go tool pprof http://127.0.0.1:7070/api/profile.pb.gz` works.
package web
