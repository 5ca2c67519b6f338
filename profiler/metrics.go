package profiler

// Names of the profiler's own metrics, exported by the agent with the rest.
const (
	MetricSamples       = "vigil.profile.samples"        // {sample}: CPU samples recorded
	MetricSamplesLost   = "vigil.profile.samples.lost"   // {sample}, by reason: samples or stack parts not recorded
	MetricUnnamedFrames = "vigil.profile.frames.unnamed" // {frame}: distinct frames without a function name

	// Off-CPU profiles': blocked intervals and their time, by result
	// (recorded with stacks, below the min-block threshold, lost), and the
	// lost ones by reason.
	MetricOffCPUIntervals = "vigil.profile.off_cpu.intervals" // {interval}, by result
	MetricOffCPUTime      = "vigil.profile.off_cpu.time"      // ns, by result
	MetricOffCPULost      = "vigil.profile.off_cpu.lost"      // ns, by reason: blocked time not recorded
	// Blocked switches whose stack came from the thread's cache of the
	// stacks it blocked with before, not from a walk.
	MetricOffCPUStacksReused = "vigil.profile.off_cpu.stacks.reused" // {stack}, by part (kernel, user)

	// The table unwinder's.
	MetricUnwindFrames      = "vigil.profile.unwind.frames"      // {frame}, by method: user frames walked with a table rule or the frame pointer
	MetricUnwindTruncated   = "vigil.profile.unwind.truncated"   // {stack}, by reason: user stacks that ended before their outermost frame
	MetricUnwindUnsupported = "vigil.profile.unwind.unsupported" // {row}, by reason: table rows vigil can't execute (walks stop there)
	MetricUnwindTables      = "vigil.profile.unwind.tables"      // {file}, by result: files whose tables were built, had none, did not fit, failed
	MetricUnwindTableBytes  = "vigil.profile.unwind.table.size"  // By, gauge, by use (used, reserved): BPF memory of the tables
	MetricPythonProcesses   = "vigil.profile.python.processes"   // {process}, gauge, by version: CPython processes being walked
	MetricPythonFrames      = "vigil.profile.python.frames"      // {frame}: Python frames recorded
	MetricPythonUnreadable  = "vigil.profile.python.unreadable"  // {frame}, by reason: Python frames named "[python frame unreadable]"
)
