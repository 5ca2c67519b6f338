package kernels

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Guest report lines. The guest init and the probe program print them on the
// results serial port; everything else there is the jobs' own output.
const (
	tagKernel   = "vigil-kernel: "
	tagModule   = "vigil-module: "
	tagBegin    = "vigil-begin: "
	tagEnd      = "vigil-end: "
	tagDone     = "vigil-done"
	tagStrategy = "vigil-strategy: "
	tagSuite    = "vigil-suite: "
)

// Limits that keep a runaway guest from growing the parsed result without
// bound: longer lines are cut, older output lines dropped.
const (
	maxLineBytes   = 64 << 10
	maxOutputLines = 60
)

// Result is everything one guest reported.
type Result struct {
	Kernel  string // uname -r inside the guest
	Modules []ModuleLoad
	Jobs    []JobResult
	Done    bool              // the guest reached the end of its job list
	Suites  map[string]string // hook -> the suite (package) that implements it
}

// ModuleLoad is the outcome of one insmod.
type ModuleLoad struct {
	Name string
	Err  string // "" when it loaded
}

// JobResult is what one job printed.
type JobResult struct {
	Name       string
	ExitCode   int // -1 when the job never finished
	Seconds    int
	Tests      []TestResult
	Strategies []StrategyLine
	Tail       []string // the last lines of output, for failure reports
}

// TestResult is one "--- PASS/FAIL/SKIP" line of go test -v.
type TestResult struct {
	Name    string // TestX or TestX/sub
	Status  string // PASS, FAIL or SKIP
	Message string // the last line the test logged, usually the skip reason
}

// StrategyLine is one attach outcome reported as
// "vigil-strategy: hook=<hook> skip=<a,b|-> chosen=<name|none> [why=<text>]".
type StrategyLine struct {
	Hook   string
	Skip   []string
	Chosen string // "none" when nothing attached
	Why    string // why the strategies that were tried failed
}

// Passed says whether the job ran to the end with exit status 0.
func (j JobResult) Passed() bool { return j.ExitCode == 0 }

// ParseResults reads a guest's results serial log.
func ParseResults(r io.Reader) (Result, error) {
	var p resultParser
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLineBytes)
	sc.Split(scanLinesCut)
	for sc.Scan() {
		p.line(strings.TrimRight(sc.Text(), "\r"))
	}
	p.flush()
	return p.res, sc.Err()
}

// scanLinesCut is bufio.ScanLines that cuts overlong lines instead of
// failing the whole scan.
func scanLinesCut(data []byte, atEOF bool) (int, []byte, error) {
	adv, tok, err := bufio.ScanLines(data, atEOF)
	if adv == 0 && tok == nil && err == nil && len(data) >= maxLineBytes {
		return len(data), data[:maxLineBytes], nil
	}
	return adv, tok, err
}

type resultParser struct {
	res     Result
	job     *JobResult
	lastLog map[string]string // test name -> last line it logged
	running string            // test whose output is streaming
}

func (p *resultParser) line(l string) {
	switch {
	case strings.HasPrefix(l, tagKernel):
		p.res.Kernel = strings.TrimSpace(l[len(tagKernel):])
	case strings.HasPrefix(l, tagModule):
		p.module(l[len(tagModule):])
	case strings.HasPrefix(l, tagBegin):
		p.flush()
		name := strings.TrimSpace(l[len(tagBegin):])
		p.job = &JobResult{Name: name, ExitCode: -1}
		p.lastLog = map[string]string{}
	case strings.HasPrefix(l, tagEnd):
		p.end(l[len(tagEnd):])
	case strings.TrimSpace(l) == tagDone:
		p.flush()
		p.res.Done = true
	case p.job != nil:
		p.output(l)
	}
}

func (p *resultParser) module(s string) {
	name, rest, _ := strings.Cut(strings.TrimSpace(s), " ")
	m := ModuleLoad{Name: name}
	if rest != "ok" {
		m.Err = strings.TrimPrefix(rest, "failed: ")
	}
	p.res.Modules = append(p.res.Modules, m)
}

func (p *resultParser) suite(s string) {
	f := fieldsKV(s)
	if f["hook"] == "" || f["suite"] == "" {
		return
	}
	if p.res.Suites == nil {
		p.res.Suites = map[string]string{}
	}
	p.res.Suites[f["hook"]] = f["suite"]
}

func (p *resultParser) end(s string) {
	if p.job == nil {
		return
	}
	f := fieldsKV(s)
	if rc, err := strconv.Atoi(f["rc"]); err == nil {
		p.job.ExitCode = rc
	}
	p.job.Seconds, _ = strconv.Atoi(f["seconds"])
	p.flush()
}

func (p *resultParser) flush() {
	if p.job != nil {
		p.res.Jobs = append(p.res.Jobs, *p.job)
		p.job = nil
	}
}

func (p *resultParser) output(l string) {
	j := p.job
	j.Tail = append(j.Tail, l)
	if len(j.Tail) > maxOutputLines {
		j.Tail = j.Tail[len(j.Tail)-maxOutputLines:]
	}
	if s, ok := strings.CutPrefix(l, tagSuite); ok {
		p.suite(s)
		return
	}
	if i := strings.Index(l, tagStrategy); i >= 0 {
		j.Strategies = append(j.Strategies, parseStrategy(l[i+len(tagStrategy):]))
		return
	}
	trimmed := strings.TrimSpace(l)
	if name, ok := strings.CutPrefix(trimmed, "=== RUN "); ok {
		p.running = strings.TrimSpace(name)
		return
	}
	if name, ok := strings.CutPrefix(trimmed, "=== NAME "); ok {
		p.running = strings.TrimSpace(name)
		return
	}
	if t, ok := parseTestLine(trimmed); ok {
		t.Message = p.lastLog[t.Name]
		j.Tests = append(j.Tests, t)
		return
	}
	if p.running != "" && strings.HasPrefix(l, "    ") && trimmed != "" {
		p.lastLog[p.running] = trimmed
	}
}

// parseTestLine reads "--- PASS: TestX (0.01s)".
func parseTestLine(l string) (TestResult, bool) {
	for _, st := range []string{"PASS", "FAIL", "SKIP"} {
		rest, ok := strings.CutPrefix(l, "--- "+st+": ")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, " ")
		return TestResult{Name: name, Status: st}, true
	}
	return TestResult{}, false
}

// parseStrategy reads "hook=read skip=fentry chosen=kprobe why=...". The
// why value runs to the end of the line, so it may hold spaces.
func parseStrategy(s string) StrategyLine {
	s, why, _ := strings.Cut(s, " why=")
	f := fieldsKV(s)
	st := StrategyLine{Hook: f["hook"], Chosen: f["chosen"], Why: strings.TrimSpace(why)}
	if sk := f["skip"]; sk != "" && sk != "-" {
		st.Skip = strings.Split(sk, ",")
	}
	return st
}

func fieldsKV(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TailLines returns the last n lines of r, each cut to a bounded length.
func TailLines(r io.Reader, n int) ([]string, error) {
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLineBytes)
	sc.Split(scanLinesCut)
	for sc.Scan() {
		if l := strings.TrimRight(sc.Text(), "\r"); l != "" {
			lines = append(lines, l)
		}
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
	}
	return lines, sc.Err()
}
