package main

import (
	"io"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/kernels/selftest"
)

type hook struct {
	name  string
	suite string // the package whose tests cover the hook
	open  opener
}

// hooks lists every hook the matrix probes: one adapter per package, since
// each has its own Options type.
func hooks() []hook {
	return []hook{
		{selftest.Hook, "selftest", func(skip map[string]bool) (attach.Report, io.Closer, error) {
			c, err := selftest.Open(selftest.Options{Skip: skip})
			if err != nil {
				return reportOf(err, selftest.Hook), nil, err
			}
			return c.Report(), c, nil
		}},
	}
}

// reportOf stands in for the report a failed Open does not return: the
// error text carries the reasons.
func reportOf(err error, hook string) attach.Report {
	return attach.Report{Hook: hook, Attempts: []attach.Attempt{{Strategy: "open", Err: err}}}
}
