//go:build ignore

// CPU profiler: a perf_event program that runs on every CPU at the sampling
// frequency and counts (process, thread, comm, kernel stack, user stack).
//
// Counts and stacks are double-buffered: user space flips active_buf, waits
// for programs already running to finish, then drains and clears the idle
// buffer while new samples land in the other one. Nothing that arrives during
// a drain is lost, and nothing is counted twice.

#include "common.bpf.h"

/* enum bpf_map_type and flags not in common.bpf.h */
#define BPF_MAP_TYPE_STACK_TRACE 7
#define BPF_MAP_TYPE_RINGBUF 27
#define BPF_F_USER_STACK (1ULL << 8)

#define EFAULT 14
#define EEXIST 17
#define ENOMEM 12

// The kernel's PERF_MAX_STACK_DEPTH: the deepest stack a stack map can hold.
#define MAX_STACK_DEPTH 127
#define PF_KTHREAD 0x00200000

struct task_struct {
	unsigned int flags;
} __attribute__((preserve_access_index));

struct bpf_perf_event_data;

// Per-CPU counters: why a sample (or part of one) was lost, and how many
// samples passed the filters. Mirrors the counter slots in drain.go. Every
// sample that passes the filters ends up either in a counts map or in one
// of the whole-sample loss reasons, so the totals can be checked.
enum counter {
	LOST_KSTACK_COLLISION = 0, // stack map hash bucket held another stack (EEXIST)
	LOST_KSTACK_FULL,          // stack map out of free entries (ENOMEM)
	LOST_KSTACK_OTHER,         // any other error walking the kernel stack
	LOST_USTACK_COLLISION,
	LOST_USTACK_FULL,
	LOST_USTACK_OTHER,         // user stack could not be walked at all
	LOST_COUNTS_FULL,          // whole sample: the counts map had no room for a new key
	LOST_NOTIFY_DROPPED,       // ring buffer full: a new process was not announced
	LOST_EMPTY_STACK,          // whole sample: neither a kernel nor a user frame
	COUNTER_SAMPLES,           // samples that passed the filters
	COUNTERS,
};

// Stack id values in a sample_key that are not ids.
#define STACK_NONE -1 // the sample had no such part (user mode, kernel thread)
#define STACK_LOST -2 // it had one but it could not be stored (counted above)

struct sample_key {
	__u32 pid;   // thread group id: the process
	__u32 tid;   // thread id
	__s32 kstack; // stack id, STACK_NONE or STACK_LOST
	__s32 ustack; // stack id, STACK_NONE or STACK_LOST
	char comm[TASK_COMM_LEN];
};

enum event_type {
	EVENT_NEW_PROCESS = 1, // first sample of a process: capture its mappings now
	EVENT_EXEC = 2,        // a process replaced its image: capture again
};

// Ring-buffer record; the unused pointer below keeps its BTF for bpf2go.
struct event {
	__u32 type;
	__u32 pid;
};
const struct event *unused_event __attribute__((unused));

// Sizes are set from Go before loading (they depend on frequency, CPUs and
// drain interval); the values here are only placeholders.
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
} stacks_a SEC(".maps"), stacks_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct sample_key);
	__type(value, __u64);
} counts_a SEC(".maps"), counts_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// Processes already announced to user space.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} seen SEC(".maps");

// Processes to sample when filter_pids is set.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} pid_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

const volatile bool filter_pids = false;
const volatile bool include_idle = false;

// Which buffer samples go to; flipped by user space before each drain.
volatile __u32 active_buf = 0;

static __always_inline void count_lost(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &reason);
	if (n)
		*n += 1; // per-CPU slot: no atomics needed
}

// stack_id walks one stack into the given map and classifies failures.
// -EFAULT with no frames is not a loss: a sample taken in user mode has no
// kernel part (and a kernel thread no user part).
static __always_inline __s32 stack_id(void *ctx, void *stacks, __u64 flags,
				      __u32 lost_base)
{
	long id = bpf_get_stackid(ctx, stacks, flags);
	if (id >= 0)
		return id;
	if (id == -EFAULT)
		return STACK_NONE;
	if (id == -EEXIST)
		count_lost(lost_base);
	else if (id == -ENOMEM)
		count_lost(lost_base + 1);
	else
		count_lost(lost_base + 2);
	return STACK_LOST;
}

static __always_inline void announce(__u32 pid)
{
	if (bpf_map_lookup_elem(&seen, &pid))
		return;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		// Not marked as seen, so the next sample tries again.
		count_lost(LOST_NOTIFY_DROPPED);
		return;
	}
	e->type = EVENT_NEW_PROCESS;
	e->pid = pid;
	bpf_ringbuf_submit(e, 0);
	__u8 one = 1;
	bpf_map_update_elem(&seen, &pid, &one, BPF_ANY);
}

static __always_inline int record(void *ctx, void *stacks, void *counts,
				  __u32 pid, __u32 tid, bool kthread)
{
	struct sample_key key = {.pid = pid, .tid = tid, .kstack = STACK_NONE, .ustack = STACK_NONE};
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	count_lost(COUNTER_SAMPLES);

	key.kstack = stack_id(ctx, stacks, 0, LOST_KSTACK_COLLISION);
	if (!kthread)
		key.ustack = stack_id(ctx, stacks, BPF_F_USER_STACK, LOST_USTACK_COLLISION);
	// A sample whose stack parts were lost is still kept, marked
	// STACK_LOST, so the profile shows where its time went. One with no
	// frames at all has nothing to show and is counted instead.
	if (key.kstack == STACK_NONE && key.ustack == STACK_NONE) {
		count_lost(LOST_EMPTY_STACK);
		return 0;
	}

	__u64 *n = bpf_map_lookup_elem(counts, &key);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return 0;
	}
	__u64 one = 1;
	if (bpf_map_update_elem(counts, &key, &one, BPF_NOEXIST) != 0) {
		// Another CPU may have inserted the same key meanwhile.
		n = bpf_map_lookup_elem(counts, &key);
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			count_lost(LOST_COUNTS_FULL);
	}
	return 0;
}

SEC("perf_event")
int profile_cpu(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;

	if (tid == 0 && !include_idle)
		return 0;
	if (filter_pids && !bpf_map_lookup_elem(&pid_filter, &pid))
		return 0;

	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	bool kthread = BPF_CORE_READ(task, flags) & PF_KTHREAD;
	if (!kthread && pid != 0)
		announce(pid);

	if (active_buf)
		return record(ctx, &stacks_b, &counts_b, pid, tid, kthread);
	return record(ctx, &stacks_a, &counts_a, pid, tid, kthread);
}

struct exec_args {
	__u64 common;
	__u32 filename_loc;
	__s32 pid;
	__s32 old_pid;
};

// A process that execs keeps its pid but maps a new image: have user space
// read its mappings again before the old ones are used for new addresses.
SEC("tracepoint/sched/sched_process_exec")
int process_exec(struct exec_args *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (filter_pids && !bpf_map_lookup_elem(&pid_filter, &pid))
		return 0;
	if (!bpf_map_lookup_elem(&seen, &pid))
		return 0; // not sampled yet: its first sample announces it
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(LOST_NOTIFY_DROPPED);
		return 0;
	}
	e->type = EVENT_EXEC;
	e->pid = pid;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
