package profiler

// Names of the profiler's own metrics, exported by the agent with the rest.
const (
	MetricSamples       = "vigil.profile.samples"        // {sample}: CPU samples recorded
	MetricSamplesLost   = "vigil.profile.samples.lost"   // {sample}, by reason: samples or stack parts not recorded
	MetricUnnamedFrames = "vigil.profile.frames.unnamed" // {frame}: distinct frames without a function name
)
