package hist

// Attribute keys that the readings of several packages and vigil's own
// metrics share, defined once. A key only one package uses stays there, in
// the same scheme: Metric<Noun> for a metric name, Attr<Key> for an
// attribute key (biolat.AttrDirection, profilesink.AttrSink).
const (
	// AttrHook names the kernel hook that measured a value or ran a
	// program: "vfs_read" or "syscall" on the read histogram, the hook of
	// attach.Report on vigil.bpf.run.*.
	AttrHook = "vigil.hook"
	// AttrReason says why something was lost, dropped or not measured.
	AttrReason = "reason"
)
