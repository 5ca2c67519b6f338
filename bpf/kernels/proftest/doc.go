// Package proftest holds the profiler's acceptance test in a form the kernel
// matrix can run inside other kernels: no compiler and no perf in the guest,
// so the workload comes prebuilt (testdata/hot, built by the matrix from
// testdata/hot.c) and the reference ratio is the one the workload is built
// to have.
package proftest
