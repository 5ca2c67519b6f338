package kernels

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// Run is one kernel's outcome, as the table shows it.
type Run struct {
	Kernel string // release
	Result Result
	Err    error // boot or timeout failure; the result may be partial
	// ConsoleTail is the end of the kernel's log, kept when the guest did
	// not finish (a panic or a hang shows there).
	ConsoleTail []string
}

// Failed says whether anything in the run went wrong: the VM did not finish,
// a job exited non-zero, or a test failed.
func (r Run) Failed() bool {
	if r.Err != nil || !r.Result.Done {
		return true
	}
	for _, j := range r.Result.Jobs {
		if !j.Passed() {
			return true
		}
	}
	return false
}

// PrintTable writes kernel × hook → chosen strategy, the whole fallback
// order seen when each choice was forced off, and the result of the tests
// of the package behind the hook; then the details of whatever failed or
// was skipped.
func PrintTable(w io.Writer, runs []Run) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KERNEL\tHOOK\tCHOSEN\tFALLBACK ORDER (each forced off in turn)\tTESTS PER STRATEGY\tPACKAGE TESTS")
	for _, r := range runs {
		for _, row := range rows(r) {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
	}
	tw.Flush()
	for _, r := range runs {
		printDetails(w, r)
	}
}

func rows(r Run) [][]string {
	chains := chains(r.Result)
	hooks := slices.Sorted(maps.Keys(chains))
	covered := map[string]bool{}
	var out [][]string
	for _, h := range hooks {
		suite := r.Result.Suites[h]
		covered[suite] = true
		c := chains[h]
		out = append(out, []string{r.Kernel, h, first(c), strings.Join(c, " > "), perStrategy(r.Result, suite, c), suiteSummary(r.Result, suite)})
	}
	for _, j := range r.Result.Jobs {
		if !covered[j.Name] && len(j.Strategies) == 0 {
			out = append(out, []string{r.Kernel, "-", "-", "-", "-", suiteSummary(r.Result, j.Name)})
		}
	}
	if r.Err != nil || !r.Result.Done {
		out = append(out, []string{r.Kernel, "-", "-", "-", "-", "VM: " + vmProblem(r)})
	}
	return out
}

func vmProblem(r Run) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return "guest did not finish its jobs"
}

// chains collects, per hook, the strategies chosen in order; the probe job
// supplies whole chains, tests may add single lines.
func chains(res Result) map[string][]string {
	c := map[string][]string{}
	for _, j := range res.Jobs {
		for _, s := range j.Strategies {
			if s.Chosen == "none" || contains(c[s.Hook], s.Chosen) {
				if c[s.Hook] == nil {
					c[s.Hook] = []string{}
				}
				continue
			}
			c[s.Hook] = append(c[s.Hook], s.Chosen)
		}
	}
	return c
}

// perStrategy counts, for each strategy of a chain, the subtests of the
// suite that name it (a path element equal to it or starting with it and
// "_", as in TestX/kprobe or TestX/kprobe_tid/tcp4): "fentry 2ok kprobe
// 1FAIL tracepoint untested".
func perStrategy(res Result, suite string, chain []string) string {
	var j *JobResult
	for i := range res.Jobs {
		if res.Jobs[i].Name == suite {
			j = &res.Jobs[i]
		}
	}
	if j == nil {
		return "-"
	}
	parts := make([]string, 0, len(chain))
	for _, st := range chain {
		parts = append(parts, st+" "+strategyCounts(j.Tests, st))
	}
	return strings.Join(parts, ", ")
}

func strategyCounts(tests []TestResult, strategy string) string {
	n := map[string]int{}
	for _, t := range tests {
		if namesStrategy(t.Name, strategy) && !hasSubtests(tests, t.Name) {
			n[t.Status]++
		}
	}
	var out []string
	for _, st := range []string{"FAIL", "PASS", "SKIP"} {
		if n[st] > 0 {
			out = append(out, fmt.Sprintf("%d%s", n[st], map[string]string{"FAIL": "FAIL", "PASS": "ok", "SKIP": "skip"}[st]))
		}
	}
	if len(out) == 0 {
		return "untested"
	}
	return strings.Join(out, "+")
}

func namesStrategy(test, strategy string) bool {
	elems := strings.Split(test, "/")
	for _, e := range elems[1:] {
		if e == strategy || strings.HasPrefix(e, strategy+"_") {
			return true
		}
	}
	return false
}

// hasSubtests says whether name has subtests of its own, so only leaves
// are counted.
func hasSubtests(tests []TestResult, name string) bool {
	for _, t := range tests {
		if strings.HasPrefix(t.Name, name+"/") {
			return true
		}
	}
	return false
}

func suiteSummary(res Result, suite string) string {
	for _, j := range res.Jobs {
		if j.Name == suite {
			return jobSummary(j)
		}
	}
	if suite == "" {
		return "-"
	}
	return suite + ": not run"
}

func jobSummary(j JobResult) string {
	n := map[string]int{}
	for _, t := range j.Tests {
		if !strings.Contains(t.Name, "/") {
			n[t.Status]++
		}
	}
	verdict := "PASS"
	switch {
	case j.ExitCode == -1:
		verdict = "UNFINISHED"
	case j.ExitCode == 143 || j.ExitCode == 124:
		verdict = "TIMEOUT"
	case j.ExitCode != 0:
		verdict = "FAIL"
	}
	return fmt.Sprintf("%s: %s (%d pass, %d fail, %d skip, %ds)", j.Name, verdict, n["PASS"], n["FAIL"], n["SKIP"], j.Seconds)
}

func printDetails(w io.Writer, r Run) {
	if len(r.ConsoleTail) > 0 {
		fmt.Fprintf(w, "%s: kernel log ends:\n    %s\n", r.Kernel, strings.Join(r.ConsoleTail, "\n    "))
	}
	for _, m := range r.Result.Modules {
		if m.Err != "" {
			fmt.Fprintf(w, "%s: module %s did not load: %s\n", r.Kernel, m.Name, m.Err)
		}
	}
	for _, j := range r.Result.Jobs {
		for _, t := range j.Tests {
			if t.Status != "PASS" {
				fmt.Fprintf(w, "%s: %s %s %s: %s\n", r.Kernel, j.Name, t.Status, t.Name, t.Message)
			}
		}
		if !j.Passed() {
			fmt.Fprintf(w, "%s: %s exited %d; last output:\n    %s\n", r.Kernel, j.Name, j.ExitCode, strings.Join(tail(j.Tail, 15), "\n    "))
		}
	}
}

func tail(l []string, n int) []string {
	if len(l) > n {
		return l[len(l)-n:]
	}
	return l
}

func first(c []string) string {
	if len(c) == 0 {
		return "none"
	}
	return c[0]
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
