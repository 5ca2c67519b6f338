package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/vigil-ebpf/vigil/bpf/attach"
	"github.com/vigil-ebpf/vigil/bpf/cpuprofile"
	"github.com/vigil-ebpf/vigil/bpf/ksyms"
)

// runCheck tries every hook of vigil on this kernel, the way the agent
// would attach it, and shows the strategy each one uses and why each
// better strategy was not taken. It exits 0 when at least the profiler works.
func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkPrivileges(); err != nil {
		return err
	}
	var rows []checkRow
	profileOK := false
	r, unwind, err := probeProfiler()
	rows = append(rows, rowsFor("profile", []attach.Report{r, unwind.report, unwind.python}, err)...)
	profileOK = err == nil
	off, offErr := probeOffCPU()
	rows = append(rows, rowsFor(cpuprofile.OffCPUHook, []attach.Report{off}, offErr)...)
	ks, ksErr := probeKsyms()
	rows = append(rows, rowsFor(ksyms.Hook, []attach.Report{ks}, ksErr)...)
	for _, h := range latencyHooks() {
		p, reports, err := h.open(hookOptions{})
		if p != nil {
			p.Close()
		}
		rows = append(rows, rowsFor(h.name, reports, err)...)
	}
	writeCheck(stdout, rows)
	if err == nil {
		writeUnwindCheck(stdout, unwind)
		writePythonCheck(stdout, pythonCheckReport(unwind.python), findPythonProcesses("/proc"))
	}
	if !profileOK {
		return fmt.Errorf("the CPU profiler cannot run on this kernel: %v", err)
	}
	return nil
}

type checkRow struct {
	hook, strategy, why string
}

// unwindCheck is what the table unwinder made of real processes here.
type unwindCheck struct {
	report attach.Report
	python attach.Report // the Python frame walker's
	pids   []uint32
	stats  cpuprofile.UnwindStats
}

// probeProfiler opens the profiler as the agent does and, with table
// unwinding, builds the tables of init's and the calling shell's files,
// so the counts of rules vigil can't execute come from this host's code.
func probeProfiler() (attach.Report, unwindCheck, error) {
	// The Python walker is loaded now, not on the first CPython process,
	// so that the python row says whether the kernel takes it.
	p, err := cpuprofile.Open(cpuprofile.Options{Frequency: 1, PythonAtOpen: true})
	if err != nil {
		return attach.Report{Hook: "profile"}, unwindCheck{report: attach.Report{Hook: cpuprofile.UnwindHook},
			python: attach.Report{Hook: cpuprofile.PythonHook}}, err
	}
	defer p.Close()
	u := unwindCheck{report: p.UnwindReport(), python: p.PythonReport()}
	if u.report.Chosen == cpuprofile.StrategyTables {
		u.pids = []uint32{1, uint32(os.Getppid())}
		for _, pid := range u.pids {
			p.Register(pid)
		}
		p.WaitTables()
		u.stats = p.UnwindStats()
	}
	return p.Report(), u, nil
}

func writeUnwindCheck(w io.Writer, u unwindCheck) {
	if u.report.Chosen != cpuprofile.StrategyTables {
		fmt.Fprintln(w, "\nuser stacks: frame pointers only; code built without them shows short stacks")
		return
	}
	st := u.stats
	fmt.Fprintf(w, "\nunwind tables for the files of pids %v: %d built, %d without CFI or Go (frame pointers), %d did not fit, %d failed;\n",
		u.pids, st.TablesBuilt, st.TablesNoCFI, st.TablesNoRoom, st.TablesFailed)
	fmt.Fprintf(w, "%d rows from %s of CFI in %s of BPF maps (%s reserved), built in %v\n",
		st.TableRows, humanBytes(st.TableSourceBytes), humanBytes(st.TableBytes), humanBytes(st.TableCapacity), st.BuildTime.Round(time.Millisecond))
	if c := countList(st.Unsupported); c != "" {
		fmt.Fprintf(w, "rows vigil can't execute (a walk stops there, counted): %s\n", c)
	} else {
		fmt.Fprintln(w, "rows vigil can't execute: none")
	}
}

// rowsFor turns the reports of one hook into table rows; a hook that could
// not attach at all shows the error, which names every strategy's reason.
// probeOffCPU opens the sampler for off-CPU time only, as `vigil profile
// --off-cpu` does: on its own, so a kernel where the scheduler switch hook
// can't attach still shows the CPU profiler working.
func probeOffCPU() (attach.Report, error) {
	p, err := cpuprofile.Open(cpuprofile.Options{Frequency: 1, NoCPU: true})
	if err != nil {
		return attach.Report{Hook: cpuprofile.OffCPUHook}, err
	}
	defer p.Close()
	return p.OffCPUReport(), nil
}

// probeKsyms chooses how kernel frames are named, as the profiler does on
// its first kernel frame.
func probeKsyms() (attach.Report, error) {
	n, err := ksyms.Open(ksyms.Options{})
	if err != nil {
		return attach.Report{Hook: ksyms.Hook}, err
	}
	defer n.Close()
	return n.Report(), nil
}

func rowsFor(hook string, reports []attach.Report, err error) []checkRow {
	if err != nil {
		return []checkRow{{hook: hook, strategy: "unavailable", why: err.Error()}}
	}
	rows := make([]checkRow, 0, len(reports))
	for _, r := range reports {
		rows = append(rows, checkRow{hook: r.Hook, strategy: r.Chosen, why: r.Reasons()})
	}
	return rows
}

func writeCheck(w io.Writer, rows []checkRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOOK\tSTRATEGY\tWHY NOT A BETTER ONE")
	for _, r := range rows {
		why := r.why
		if why == "" {
			why = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.hook, r.strategy, why)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nprivileges: every hook needs CAP_BPF and CAP_PERFMON (or root). The profiler also reads")
	fmt.Fprintln(w, "other processes' maps and binaries (CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH, and")
	fmt.Fprintln(w, "CAP_CHECKPOINT_RESTORE for /proc/<pid>/map_files) and names kernel frames from")
	fmt.Fprintln(w, "/proc/kallsyms (when ksyms is not snprintf), which shows addresses only with CAP_SYSLOG.")
}
