//go:build ignore

// Read latency: time from entering a read to returning from it, per task,
// aggregated into one OTel exponential histogram (see hist.bpf.h).
//
// Three ways to see a read, tried in this order by Go:
//   fentry/fexit vfs_read      cheapest, needs BTF trampolines
//   kprobe/kretprobe vfs_read  needs CONFIG_KPROBES
//   tp_btf sys_enter/sys_exit  raw syscall hooks filtered to the read calls
//   tracepoint syscalls:sys_{enter,exit}_{read,pread64,readv,preadv}
// The start time lives in per-task storage rather than a hash keyed by
// thread id: the storage hangs off task_struct, so there is no hash walk and
// nothing to clean up when a thread dies mid-read. Kernels before 5.11 have
// no task storage: there the kprobe and tracepoint strategies load their
// *_tid twins, which keep the start in an LRU hash keyed by thread id and
// use no BTF at all (the process breakdown then names threads). All
// programs return 0:
// a tracepoint program returning 1 would also make the kernel emit a perf
// event for it.

#include "hist.bpf.h"

struct task_struct {
	struct task_struct *group_leader;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} read_start SEC(".maps");

/* One series: the hook attribute is the same for every value of a strategy. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist_value);
} read_hist SEC(".maps");

/* Only this process (tgid) when non-zero; set from Go before load. */
const volatile __u32 target_tgid = 0;

/* The read syscalls of this architecture (read, pread64, readv, preadv),
 * for the raw sys_enter hook; set from Go before load. */
const volatile long read_nr[4] = {-1, -1, -1, -1};

static __always_inline bool wanted(void)
{
	if (target_tgid && (bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return false;
	return true;
}

static __always_inline void read_begin(void)
{
	__u64 *ts;

	if (!wanted())
		return;
	ts = bpf_task_storage_get(&read_start, bpf_get_current_task_btf(), 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (ts)
		*ts = bpf_ktime_get_ns();
}

/* read_end returns the duration of the read that is ending, or -1 when its
 * start was not seen (attached mid-read, or filtered out). */
static __always_inline __s64 read_end(void)
{
	__u64 *ts, start;

	ts = bpf_task_storage_get(&read_start, bpf_get_current_task_btf(), 0, 0);
	if (!ts || *ts == 0)
		return -1;
	start = *ts;
	*ts = 0;
	return bpf_ktime_get_ns() - start;
}

/* Breakdown by process name, off unless Go sets by_comm. Go sizes
 * read_hist_comm to the cardinality cap; values of names beyond it go to
 * read_hist, which is then the overflow series. */
const volatile bool by_comm = false;

struct comm_key {
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1);
	__type(key, struct comm_key);
	__type(value, struct hist_value);
} read_hist_comm SEC(".maps");

/* by_process returns the series of the current process, NULL when the
 * breakdown is off or the cap is reached. */
static __always_inline struct hist_value *by_process(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct comm_key k = {};

	/* The process's name: its threads may be named otherwise. */
	task = BPF_CORE_READ(task, group_leader);
	bpf_probe_read_kernel_str(k.comm, sizeof(k.comm), &task->comm);
	return hist_lookup(&read_hist_comm, &k);
}

/* by_thread is by_process without BTF: the current thread's name. */
static __always_inline struct hist_value *by_thread(void)
{
	struct comm_key k = {};

	bpf_get_current_comm(k.comm, sizeof(k.comm));
	return hist_lookup(&read_hist_comm, &k);
}

static __always_inline void record(__s64 ns, bool sync, bool btf)
{
	struct hist_value *h = 0;
	__u32 key = 0;

	if (ns < 0)
		return;
	if (by_comm)
		h = btf ? by_process() : by_thread();
	if (!h)
		h = bpf_map_lookup_elem(&read_hist, &key);
	if (!h)
		return;
	if (sync)
		hist_add_sync(h, ns);
	else
		hist_add(h, ns);
}

SEC("fentry/vfs_read")
int BPF_PROG(read_fentry)
{
	read_begin();
	return 0;
}

/* fexit programs may be preempted by another run on the same CPU. */
SEC("fexit/vfs_read")
int BPF_PROG(read_fexit)
{
	record(read_end(), true, true);
	return 0;
}

SEC("kprobe/vfs_read")
int read_kprobe(void *ctx)
{
	read_begin();
	return 0;
}

SEC("kretprobe/vfs_read")
int read_kretprobe(void *ctx)
{
	record(read_end(), false, true);
	return 0;
}

/* id is the number in the calling task's own syscall table: a 32-bit task
 * on a 64-bit kernel numbers its syscalls differently, so its reads are
 * missed and a few of its other calls may be timed (the classic syscalls
 * tracepoints skip such tasks altogether). */
SEC("tp_btf/sys_enter")
int BPF_PROG(read_sys_enter, void *regs, long id)
{
	if (id == read_nr[0] || id == read_nr[1] || id == read_nr[2] || id == read_nr[3])
		read_begin();
	return 0;
}

/* Every syscall exits through here; only tasks whose read started above
 * have a timestamp set. */
SEC("tp_btf/sys_exit")
int BPF_PROG(read_sys_exit)
{
	record(read_end(), false, true);
	return 0;
}

/* Attached to each of sys_enter_{read,pread64,readv,preadv}. */
SEC("tracepoint/syscalls/sys_enter_read")
int read_tp_enter(void *ctx)
{
	read_begin();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int read_tp_exit(void *ctx)
{
	record(read_end(), false, true);
	return 0;
}

/* Twins for kernels without task storage. */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} read_start_tid SEC(".maps");

static __always_inline void read_begin_tid(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 ts;

	if (!wanted())
		return;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&read_start_tid, &tid, &ts, BPF_ANY);
}

static __always_inline __s64 read_end_tid(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *ts, start;

	ts = bpf_map_lookup_elem(&read_start_tid, &tid);
	if (!ts)
		return -1;
	start = *ts;
	bpf_map_delete_elem(&read_start_tid, &tid);
	return bpf_ktime_get_ns() - start;
}

SEC("kprobe/vfs_read")
int read_kprobe_tid(void *ctx)
{
	read_begin_tid();
	return 0;
}

SEC("kretprobe/vfs_read")
int read_kretprobe_tid(void *ctx)
{
	record(read_end_tid(), false, false);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int read_tp_enter_tid(void *ctx)
{
	read_begin_tid();
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int read_tp_exit_tid(void *ctx)
{
	record(read_end_tid(), false, false);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
