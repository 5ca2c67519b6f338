// Package deploy holds the tests of vigil's deployment files: the systemd
// unit and install fragment, the Kubernetes manifests, the container image's
// build step and the observability stack in compose/.
package deploy

// requiredCaps are the capabilities vigil's features need on kernels >= 5.9
// (docs/deploy.md says why each is there). The systemd unit and the
// DaemonSet must grant exactly these, so a change to one is a change to all.
var requiredCaps = []string{
	"BPF",                // load programs, create maps
	"PERFMON",            // system-wide perf events, tracing programs
	"SYS_PTRACE",         // /proc/<pid>/{maps,root,environ} of every process
	"DAC_READ_SEARCH",    // binaries and perf maps other users own
	"SYSLOG",             // real addresses in /proc/kallsyms
	"CHECKPOINT_RESTORE", // /proc/<pid>/map_files of deleted binaries
}
