//go:build ignore

// Run-queue delay: how long a runnable task waits before it gets a CPU,
// from wakeup (or from being switched out while still runnable) to being
// switched in, aggregated into one OTel exponential histogram.
//
// Strategies, tried in this order by Go:
//   tp_btf     sched_wakeup, sched_wakeup_new, sched_switch with typed task
//              pointers; the enqueue time lives in per-task storage.
//   tracepoint the classic sched tracepoints, whose records carry pids, not
//              tasks: the enqueue time lives in an LRU hash keyed by pid.
// The idle tasks (pid 0) are never queued and are ignored.

#include "hist.bpf.h"

#define TASK_RUNNING 0

struct task_struct {
	unsigned int __state;
	int pid;
	struct task_struct *group_leader;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

#include "sched.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} rq_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u64);
} rq_start_pid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist_value);
} rq_hist SEC(".maps");

/* Breakdown by process name, off unless Go sets by_comm. Go sizes
 * rq_hist_comm to the cardinality cap; values of names beyond it go to
 * rq_hist, which is then the overflow series. */
const volatile bool by_comm = false;

struct comm_key {
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1);
	__type(key, struct comm_key);
	__type(value, struct hist_value);
} rq_hist_comm SEC(".maps");

static __always_inline void record(__u64 ns, const struct comm_key *k)
{
	struct hist_value *h;
	__u32 key = 0;

	if (by_comm) {
		h = hist_lookup(&rq_hist_comm, k);
		if (h) {
			hist_add(h, ns);
			return;
		}
	}
	h = bpf_map_lookup_elem(&rq_hist, &key);
	if (h)
		hist_add(h, ns);
}

static __always_inline void enqueue_task(struct task_struct *p)
{
	__u64 *ts;

	if (p->pid == 0)
		return;
	ts = bpf_task_storage_get(&rq_start, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (ts)
		*ts = bpf_ktime_get_ns();
}


SEC("tp_btf/sched_wakeup")
int BPF_PROG(rq_wakeup, struct task_struct *p)
{
	enqueue_task(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(rq_wakeup_new, struct task_struct *p)
{
	enqueue_task(p);
	return 0;
}

/* A task switched out while runnable (preempted, or yielding) goes straight
 * back on the run queue: its wait starts now. */
SEC("tp_btf/sched_switch")
int BPF_PROG(rq_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct comm_key k = {};
	__u64 *ts, delta;

	if (preempt || task_state(prev) == TASK_RUNNING)
		enqueue_task(prev);
	if (next->pid == 0)
		return 0;
	ts = bpf_task_storage_get(&rq_start, next, 0, 0);
	if (!ts || *ts == 0)
		return 0;
	delta = bpf_ktime_get_ns() - *ts;
	*ts = 0;
	if (by_comm) {
		/* The process's name: its threads may be named otherwise. */
		struct task_struct *leader = BPF_CORE_READ(next, group_leader);

		bpf_probe_read_kernel_str(k.comm, sizeof(k.comm), &leader->comm);
	}
	record(delta, &k);
	return 0;
}

/* Classic tracepoint records; these layouts have been stable since 4.x. */
struct sched_wakeup_rec {
	__u64 common;
	char comm[TASK_COMM_LEN];
	int pid;
	int prio;
	int target_cpu;
};


/* prev_state holds the task's state bits in its low byte; a preempted task
 * reports a bit above them (TASK_REPORT_MAX), so "runnable" is a zero low
 * byte. */
#define SWITCH_STATE_MASK 0xff

static __always_inline void enqueue_pid(__u32 pid)
{
	__u64 ts;

	if (pid == 0)
		return;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&rq_start_pid, &pid, &ts, BPF_ANY);
}

SEC("tracepoint/sched/sched_wakeup")
int rq_tp_wakeup(struct sched_wakeup_rec *ctx)
{
	enqueue_pid(ctx->pid);
	return 0;
}

SEC("tracepoint/sched/sched_wakeup_new")
int rq_tp_wakeup_new(struct sched_wakeup_rec *ctx)
{
	enqueue_pid(ctx->pid);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int rq_tp_switch(struct sched_switch_rec *ctx)
{
	__u32 next = ctx->next_pid;
	struct comm_key k = {};
	__u64 *ts, delta;

	if ((ctx->prev_state & SWITCH_STATE_MASK) == 0)
		enqueue_pid(ctx->prev_pid);
	if (next == 0)
		return 0;
	ts = bpf_map_lookup_elem(&rq_start_pid, &next);
	if (!ts)
		return 0;
	delta = bpf_ktime_get_ns() - *ts;
	bpf_map_delete_elem(&rq_start_pid, &next);
	/* The record only names the thread. */
	if (by_comm)
		__builtin_memcpy(k.comm, ctx->next_comm, sizeof(k.comm));
	record(delta, &k);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
