//go:build ignore

// CPU profiler: a perf_event program that runs on every CPU at the sampling
// frequency and counts (process, thread, comm, kernel stack, user stack).
// Off-CPU profiler (optional): a sched_switch program that records where a
// thread blocks and, when it runs again, adds the time it was away to those
// stacks (see offcpu_switch below).
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
#define E2BIG 7

// The kernel's PERF_MAX_STACK_DEPTH: the deepest stack a stack map can hold.
#define MAX_STACK_DEPTH 127
#define PF_KTHREAD 0x00200000

struct task_struct {
	unsigned int flags;
	void *stack;
	int pid;
	int tgid;
	unsigned int __state;
} __attribute__((preserve_access_index));

#include "sched.bpf.h"

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
	/* The table unwinder's own counts: frames by how they were walked and
	 * user stacks that ended early, by why (enum truncation order). */
	UNW_FRAMES_TABLE,
	UNW_FRAMES_FP,
	UNW_FP_NO_MAPPING,         // a frame outside every known mapping: frame pointer
	UNW_FP_NO_RULE,            // a frame no table row covers: frame pointer
	UNW_SIGNAL_FRAMES,         // signal frames unwound through
	UNW_TAIL_CALL_FAILED,
	UNW_TRUNC_BASE,            // + enum truncation - 1
	/* Python frames: frames recorded, samples of Python processes whose
	 * thread had no thread state (not a Python thread), Python stacks that
	 * could not be stored, and failed tail calls into walk_python. */
	PY_FRAMES = UNW_TRUNC_BASE + 6,
	PY_NO_THREAD_STATE,
	PY_STACK_LOST,
	PY_TAIL_CALL_FAILED,
	COUNTERS,
};

// Stack id values in a sample_key that are not ids.
#define STACK_NONE -1 // the sample had no such part (user mode, kernel thread)
#define STACK_LOST -2 // it had one but it could not be stored (counted above)
#define STACK_HASHED -3 // the user stack is in ustacks_a/b under uhash
#define STACK_SPILL (1 << 30) // set in an id of spill_a/b
#define PYHASH_NONE 0  // no Python stack: not a CPython process, or no frames
#define PYHASH_LOST 1  // it had one but it could not be stored (counted)

struct sample_key {
	__u32 pid;   // thread group id: the process
	__u32 tid;   // thread id
	__s32 kstack; // stack id, STACK_NONE or STACK_LOST
	__s32 ustack; // stack id, STACK_NONE, STACK_LOST or STACK_HASHED
	__u64 uhash;  // with STACK_HASHED: the key of the user stack
	__u64 pyhash; // the key of the Python stack in pystacks_a/b, or PYHASH_*
	char comm[TASK_COMM_LEN];
};

enum event_type {
	EVENT_NEW_PROCESS = 1, // first sample of a process: capture its mappings now
	EVENT_EXEC = 2,        // a process replaced its image: capture again
	EVENT_MAPS_CHANGED = 3, // a PC outside every known mapping: read them again
};

// Ring-buffer record; the unused pointer below keeps its BTF for bpf2go.
struct event {
	__u32 type;
	__u32 pid;
};
const struct event *unused_event __attribute__((unused));

// Sizes are set from Go before loading (they depend on frequency, CPUs and
// drain interval); the values here are only placeholders.
//
// A stack map refuses a stack whose hash bucket another stack holds
// (EEXIST), and which stacks collide is fixed for a boot (KASLR places the
// addresses they hash), so a colliding pair of frequent stacks would lose
// one of them every time. The refused stack goes to the spill map of the
// same buffer instead, where its bucket is almost surely free; its id
// carries STACK_SPILL. Only a third stack in the same bucket is lost.
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
} stacks_a SEC(".maps"), stacks_b SEC(".maps"), spill_a SEC(".maps"), spill_b SEC(".maps");

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
// Walk user stacks with the unwind tables (else the kernel's frame-pointer walk).
const volatile bool unwind_tables = false;
// Walk the Python frames of CPython processes (needs unwind_tables).
const volatile bool python_frames = false;
// The kernel has bpf_task_pt_regs (5.15).
const volatile bool have_task_pt_regs = false;

// The drain epoch: its low bit is the buffer samples go to. User space
// increments it before each drain. Off-CPU intervals can span drains, so
// they carry the epoch their stacks were stored in.
volatile __u32 active_buf = 0;

static __always_inline void count_lost(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &reason);
	if (n)
		*n += 1; // per-CPU slot: no atomics needed
}

// get_stackid stores one stack in stacks or, when another stack holds its
// bucket there, in spill (the same buffer's spill map).
static __always_inline long get_stackid(void *ctx, void *stacks, void *spill, __u64 flags)
{
	long id = bpf_get_stackid(ctx, stacks, flags);
	if (id != -EEXIST)
		return id;
	id = bpf_get_stackid(ctx, spill, flags);
	return id >= 0 ? (id | STACK_SPILL) : id;
}

// stack_id walks one stack into the given maps and classifies failures.
// -EFAULT with no frames is not a loss: a sample taken in user mode has no
// kernel part (and a kernel thread no user part).
static __always_inline __s32 stack_id(void *ctx, void *stacks, void *spill, __u64 flags,
				      __u32 lost_base)
{
	long id = get_stackid(ctx, stacks, spill, flags);
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

// notify tells user space about pid; a full ring buffer is counted and
// reported as false.
static __always_inline bool notify(__u32 type, __u32 pid)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost(LOST_NOTIFY_DROPPED);
		return false;
	}
	e->type = type;
	e->pid = pid;
	bpf_ringbuf_submit(e, 0);
	return true;
}

static __always_inline void announce(__u32 pid)
{
	if (bpf_map_lookup_elem(&seen, &pid))
		return;
	// Not marked as seen when dropped, so the next sample tries again.
	if (!notify(EVENT_NEW_PROCESS, pid))
		return;
	__u8 one = 1;
	bpf_map_update_elem(&seen, &pid, &one, BPF_ANY);
}

// count_sample adds one to key's count.
static __always_inline int count_sample(void *counts, struct sample_key *key)
{
	// A sample whose stack parts were lost is still kept, marked
	// STACK_LOST, so the profile shows where its time went. One with no
	// frames at all has nothing to show and is counted instead.
	if (key->kstack == STACK_NONE && key->ustack == STACK_NONE) {
		count_lost(LOST_EMPTY_STACK);
		return 0;
	}
	__u64 *n = bpf_map_lookup_elem(counts, key);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return 0;
	}
	__u64 one = 1;
	if (bpf_map_update_elem(counts, key, &one, BPF_NOEXIST) != 0) {
		// Another CPU may have inserted the same key meanwhile.
		n = bpf_map_lookup_elem(counts, key);
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			count_lost(LOST_COUNTS_FULL);
	}
	return 0;
}

static __always_inline int record(void *ctx, void *stacks, void *spill, void *counts,
				  __u32 pid, __u32 tid, bool kthread)
{
	struct sample_key key = {.pid = pid, .tid = tid, .kstack = STACK_NONE, .ustack = STACK_NONE};
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	count_lost(COUNTER_SAMPLES);

	key.kstack = stack_id(ctx, stacks, spill, 0, LOST_KSTACK_COLLISION);
	if (!kthread)
		key.ustack = stack_id(ctx, stacks, spill, BPF_F_USER_STACK, LOST_USTACK_COLLISION);
	return count_sample(counts, &key);
}

#include "unwind.bpf.h"
#include "python.bpf.h"
#include "offcpu.bpf.h"

// saved_user_regs reads the registers the kernel saved on entry from user
// mode, at the top of task's kernel stack.
static __always_inline int saved_user_regs(struct task_struct *task, struct user_regs *out)
{
	void *saved;
	if (have_task_pt_regs) {
		saved = (void *)bpf_task_pt_regs(task);
	} else {
		// task_pt_regs() before 5.15: the pt_regs sit at the top of the
		// THREAD_SIZE (16 KiB on x86-64 without KASAN) kernel stack.
		void *stack = BPF_CORE_READ(task, stack);
		if (!stack)
			return -1;
		saved = stack + 16384 - sizeof(struct user_regs);
	}
	return bpf_probe_read_kernel(out, sizeof(*out), saved);
}

// user_regs returns the registers the user code had when the sample hit:
// the sample's own when it interrupted user mode, else those the kernel
// saved on entry, at the top of the task's kernel stack.
static __always_inline int user_regs(struct bpf_perf_event_data *ctx, struct user_regs *out)
{
	struct user_regs *regs = (struct user_regs *)ctx;
	if ((regs->cs & 3) == 3) {
		out->ip = regs->ip;
		out->sp = regs->sp;
		out->bp = regs->bp;
		return 0;
	}
	if (have_task_pt_regs)
		return saved_user_regs(bpf_get_current_task_btf(), out);
	return saved_user_regs((struct task_struct *)bpf_get_current_task(), out);
}

// complete ends a walk: a CPU sample is counted, an off-CPU record written.
// typed: the program is a tp_btf one (it may keep records in task storage).
static __always_inline int complete(struct unwind_state *st, bool typed)
{
	if (st->mode == MODE_OFFCPU)
		return offcpu_commit(st, typed);
	return count_sample(st->buf ? (void *)&counts_b : (void *)&counts_a, &st->key);
}

static __always_inline void count_ustack_lost(struct unwind_state *st, bool full)
{
	if (st->mode == MODE_OFFCPU)
		off_count(full ? OFF_USTACK_FULL : OFF_USTACK_OTHER);
	else
		count_lost(full ? LOST_USTACK_FULL : LOST_USTACK_OTHER);
}

// finish stores the walked user stack and completes the walk; reason is
// 0, -1 (complete) or why the walk stopped early.
static __always_inline int finish(void *ctx, void *progs, struct unwind_state *st, int reason, bool typed)
{
	if (reason > 0) {
		// The marker has a slot of its own past MAX_USER_FRAMES, so a
		// walk cut at the depth limit still says so.
		__u64 d = st->stack.len;
		if (d <= MAX_USER_FRAMES) {
			st->stack.frames[d & 127] = MARKER_BASE | (__u32)reason;
			st->stack.len = d + 1;
			st->hash = (st->hash ^ reason) * 0x100000001b3ULL;
		}
		count_lost(UNW_TRUNC_BASE + ((reason - 1) & 7));
	}
	if (st->n_table) {
		__u32 slot = UNW_FRAMES_TABLE;
		__u64 *n = bpf_map_lookup_elem(&counters, &slot);
		if (n)
			*n += st->n_table;
	}
	if (st->n_fp) {
		__u32 slot = UNW_FRAMES_FP;
		__u64 *n = bpf_map_lookup_elem(&counters, &slot);
		if (n)
			*n += st->n_fp;
	}
	void *ustacks = st->buf ? (void *)&ustacks_b : (void *)&ustacks_a;
	if (st->stack.len == 0) {
		st->key.ustack = STACK_NONE;
	} else {
		long err = bpf_map_update_elem(ustacks, &st->hash, &st->stack, BPF_NOEXIST);
		if (err == 0 || err == -EEXIST) {
			// Equal hashes are taken as equal stacks: a 64-bit FNV
			// collision among one interval's stacks is vanishingly rare.
			st->key.ustack = STACK_HASHED;
			st->key.uhash = st->hash;
		} else {
			count_ustack_lost(st, err == -E2BIG || err == -ENOMEM);
			st->key.ustack = STACK_LOST;
		}
	}
	bool python = python_frames && bpf_map_lookup_elem(&py_procs, &st->key.pid);
	// A complete walk of a thread leaving the CPU, for its cache (not a
	// Python process's: its Python frames are read apart).
	if (typed && task_records && cache_stacks && st->mode == MODE_OFFCPU && reason <= 0 && !python)
		uc_fill(st);
	if (python) {
		__u32 slot = st->mode & 1;
		struct py_state *ps = bpf_map_lookup_elem(&py_scratch, &slot);
		if (ps) {
			ps->started = 0;
			ps->frame = 0;
			ps->chunk_len = 0;
			ps->chunk_base = 0;
			ps->stack.len = 0;
			ps->stack.pid = st->key.pid;
			ps->hash = (0xcbf29ce484222325ULL ^ st->key.pid) * 0x100000001b3ULL;
			bpf_tail_call(ctx, progs, 1);
			count_lost(PY_TAIL_CALL_FAILED);
		}
	}
	return complete(st, typed);
}

// finish_python stores the walked Python stack and completes the walk.
static __always_inline int finish_python(struct unwind_state *st, struct py_state *ps, bool typed)
{
	if (ps->stack.len > 0) {
		void *pystacks = st->buf ? (void *)&pystacks_b : (void *)&pystacks_a;
		__u64 h = ps->hash | 2; // never PYHASH_NONE or PYHASH_LOST
		long err = bpf_map_update_elem(pystacks, &h, &ps->stack, BPF_NOEXIST);
		if (err == 0 || err == -EEXIST) {
			st->key.pyhash = h;
		} else {
			st->key.pyhash = PYHASH_LOST;
			count_lost(PY_STACK_LOST);
		}
	}
	__u32 slot = PY_FRAMES;
	__u64 *n = bpf_map_lookup_elem(&counters, &slot);
	if (n)
		*n += ps->stack.len;
	return complete(st, typed);
}

// walk_python follows up to PY_FRAMES_PER_CALL Python frames, then
// tail-calls itself; finish hands it the walk after the native one.
static __always_inline int walk_python_body(void *ctx, void *progs, __u32 slot, bool typed)
{
	struct unwind_state *st = bpf_map_lookup_elem(&unwind_scratch, &slot);
	struct py_state *ps = bpf_map_lookup_elem(&py_scratch, &slot);
	if (!st || !ps)
		return 0;
	struct py_proc *pp = bpf_map_lookup_elem(&py_procs, &st->key.pid);
	if (!pp)
		return finish_python(st, ps, typed);
	if (!ps->started) {
		ps->started = 1;
		__u64 tstate = find_tstate(pp, st->key.tid);
		if (!tstate) {
			count_lost(PY_NO_THREAD_STATE);
			return finish_python(st, ps, typed);
		}
		ps->frame = first_frame(pp, tstate);
	}
#pragma clang loop unroll(disable)
	for (int i = 0; i < PY_FRAMES_PER_CALL; i++) {
		if (py_step(pp, ps))
			return finish_python(st, ps, typed);
		if (ps->stack.len >= MAX_PY_FRAMES - 1) {
			if (ps->frame)
				push_py(ps, PY_MARK_DEPTH, PY_UNKNOWN_OFFSET, 0);
			return finish_python(st, ps, typed);
		}
	}
	bpf_tail_call(ctx, progs, 1);
	count_lost(PY_TAIL_CALL_FAILED);
	return finish_python(st, ps, typed);
}

// walk_user unwinds up to FRAMES_PER_CALL frames, then tail-calls itself.
static __always_inline int walk_user_body(void *ctx, void *progs, __u32 slot, bool typed)
{
	struct unwind_state *st = bpf_map_lookup_elem(&unwind_scratch, &slot);
	if (!st)
		return 0;
	struct proc *p = bpf_map_lookup_elem(&procs, &st->key.pid);
	if (!p) {
		// Not registered yet (or evicted from the LRU): keep the leaf, say
		// why the rest is missing, and have the next sample announce the
		// process again in case its announcement was lost.
		bpf_map_delete_elem(&seen, &st->key.pid);
		push_frame(st, st->ip);
		return finish(ctx, progs, st, TRUNC_PROCESS_NOT_LOADED, typed);
	}
	int r = 0;
#pragma clang loop unroll(disable)
	for (int i = 0; i < FRAMES_PER_CALL; i++) {
		r = unwind_step(st, p);
		if (r != 0)
			return finish(ctx, progs, st, r, typed);
		if (st->stack.len >= MAX_USER_FRAMES)
			return finish(ctx, progs, st, st->ip ? TRUNC_DEPTH : -1, typed);
	}
	bpf_tail_call(ctx, progs, 0);
	count_lost(UNW_TAIL_CALL_FAILED);
	return finish(ctx, progs, st, TRUNC_DEPTH, typed);
}

// The walkers as programs of each entry point's type, with its own
// program array and scratch slot.
SEC("perf_event")
int walk_python(struct bpf_perf_event_data *ctx) { return walk_python_body(ctx, &unwind_progs, MODE_CPU, false); }
SEC("perf_event")
int walk_user(struct bpf_perf_event_data *ctx) { return walk_user_body(ctx, &unwind_progs, MODE_CPU, false); }
SEC("tp_btf/sched_switch")
int offcpu_walk_python(__u64 *ctx) { return walk_python_body(ctx, &offcpu_progs, MODE_OFFCPU, true); }
SEC("tp_btf/sched_switch")
int offcpu_walk_user(__u64 *ctx) { return walk_user_body(ctx, &offcpu_progs, MODE_OFFCPU, true); }
SEC("tracepoint/sched/sched_switch")
int offcpu_tp_walk_python(void *ctx) { return walk_python_body(ctx, &offcpu_tp_progs, MODE_OFFCPU, false); }
SEC("tracepoint/sched/sched_switch")
int offcpu_tp_walk_user(void *ctx) { return walk_user_body(ctx, &offcpu_tp_progs, MODE_OFFCPU, false); }

// start_walk sets st up to walk the user stack from regs.
static __always_inline void start_walk(struct unwind_state *st, struct user_regs *regs, __u32 buf)
{
	st->ip = regs->ip;
	st->sp = regs->sp;
	st->bp = regs->bp;
	st->hash = 0xcbf29ce484222325ULL;
	st->buf = buf;
	st->return_addr = 0;
	st->n_table = 0;
	st->n_fp = 0;
	st->last_map = 0;
	st->chunk_len = 0;
	st->chunk_base = 0;
	st->stack.len = 0;
	st->sp0 = regs->sp;
	st->bp0 = regs->bp;
	st->uncached = st->mode != MODE_OFFCPU; // only off-CPU walks are cached
	st->nlog = 0;
	st->bp_used = 0;
}

// record_walked takes the kernel stack as before and hands the user stack to
// walk_user, which counts the sample when its walk ends.
static __always_inline int record_walked(struct bpf_perf_event_data *ctx, __u32 buf,
					 __u32 pid, __u32 tid, bool kthread)
{
	__u32 slot = MODE_CPU;
	struct unwind_state *st = bpf_map_lookup_elem(&unwind_scratch, &slot);
	if (!st)
		return 0;
	void *stacks = buf ? (void *)&stacks_b : (void *)&stacks_a;
	void *spill = buf ? (void *)&spill_b : (void *)&spill_a;
	void *counts = buf ? (void *)&counts_b : (void *)&counts_a;
	__builtin_memset(&st->key, 0, sizeof(st->key));
	st->key.pid = pid;
	st->key.tid = tid;
	st->key.ustack = STACK_NONE;
	st->mode = MODE_CPU;
	bpf_get_current_comm(&st->key.comm, sizeof(st->key.comm));
	count_lost(COUNTER_SAMPLES);
	st->key.kstack = stack_id(ctx, stacks, spill, 0, LOST_KSTACK_COLLISION);
	struct user_regs regs = {};
	if (kthread || user_regs(ctx, &regs) != 0 || regs.ip == 0)
		return count_sample(counts, &st->key);
	start_walk(st, &regs, buf);
	bpf_tail_call(ctx, &unwind_progs, 0);
	count_lost(UNW_TAIL_CALL_FAILED);
	push_frame(st, st->ip);
	return finish(ctx, &unwind_progs, st, TRUNC_DEPTH, false);
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

	__u32 buf = active_buf & 1;
	if (unwind_tables)
		return record_walked(ctx, buf, pid, tid, kthread);
	if (buf)
		return record(ctx, &stacks_b, &spill_b, &counts_b, pid, tid, kthread);
	return record(ctx, &stacks_a, &spill_a, &counts_a, pid, tid, kthread);
}

// offcpu_out records where prev, a user thread of pid that just blocked,
// leaves the CPU (current is prev): its kernel stack now, its user stack by
// the walker, whose end writes the record.
static __always_inline int offcpu_out(void *ctx, void *progs, struct task_struct *prev,
				      __u32 pid, __u32 tid, __u64 now, bool typed)
{
	__u32 slot = MODE_OFFCPU;
	struct unwind_state *st = bpf_map_lookup_elem(&unwind_scratch, &slot);
	if (!st)
		return 0;
	announce(pid);
	__u32 epoch = active_buf, buf = epoch & 1;
	__builtin_memset(&st->key, 0, sizeof(st->key));
	st->key.pid = pid;
	st->key.tid = tid;
	st->key.ustack = STACK_NONE;
	st->mode = MODE_OFFCPU;
	st->epoch = epoch;
	st->buf = buf;
	st->start = now;
	bpf_get_current_comm(&st->key.comm, sizeof(st->key.comm));
	void *stacks = buf ? (void *)&stacks_b : (void *)&stacks_a;
	void *spill = buf ? (void *)&spill_b : (void *)&spill_a;
	st->key.kstack = STACK_NONE;
	if (off_stacks & OFF_KERNEL_STACK)
		st->key.kstack = off_kstack(ctx, prev, stacks, spill, epoch, typed);
	if (!(off_stacks & OFF_USER_STACK))
		return offcpu_commit(st, typed);
	if (!unwind_tables) {
		st->key.ustack = off_stack_id(ctx, stacks, spill, BPF_F_USER_STACK, OFF_USTACK_COLLISION);
		return offcpu_commit(st, typed);
	}
	struct user_regs regs = {};
	if (saved_user_regs(prev, &regs) != 0) {
		off_count(OFF_NO_USER_REGS);
		st->key.ustack = STACK_LOST;
		return offcpu_commit(st, typed);
	}
	if (regs.ip == 0) // a thread that never runs user code (io_uring worker)
		return offcpu_commit(st, typed);
	if (typed && task_records && cache_stacks && !(python_frames && bpf_map_lookup_elem(&py_procs, &pid))) {
		__u32 zero = 0;
		struct kcache_scratch *s = bpf_map_lookup_elem(&kcache_scratch, &zero);
		struct stack_cache *c = bpf_task_storage_get(&offcpu_stack_cache, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		struct ucache_way *u = (s && c) ? uc_hit(c, s, &regs, epoch) : NULL;
		if (u) {
			st->key.ustack = STACK_HASHED;
			st->key.uhash = u->hash;
			off_count(OFF_USTACK_REUSED);
			return offcpu_commit(st, typed);
		}
	}
	start_walk(st, &regs, buf);
	st->key.ustack = STACK_PENDING;
	bpf_tail_call(ctx, progs, 0);
	count_lost(UNW_TAIL_CALL_FAILED);
	push_frame(st, st->ip);
	return finish(ctx, progs, st, TRUNC_DEPTH, typed);
}

// wanted says whether a thread of pid that left the CPU is one to record.
static __always_inline bool wanted(struct task_struct *task, __u32 pid, __u32 tid)
{
	if (tid == 0 || (BPF_CORE_READ(task, flags) & PF_KTHREAD))
		return false;
	return !filter_pids || bpf_map_lookup_elem(&pid_filter, &pid);
}

// The task states that are waiting, not runnable: interruptible and
// uninterruptible sleep, stopped, traced.
#define TASK_WAITING 0xf


// offcpu_switch ends next's off-CPU interval and starts prev's, if prev
// blocked. A preempted prev is still runnable: run-queue delay, not
// off-CPU, and left alone.
SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();
	offcpu_charge(next, next->pid, now);
	if (preempt)
		return 0;
	// From 5.18 the tracepoint passes the state __schedule acted on;
	// before, the task's own field is what it has (a wakeup racing with
	// the switch may already have set it running: such a wait is short
	// and goes unrecorded).
	unsigned int state = have_prev_state ? (unsigned int)ctx[3] : task_state(prev);
	if (!(state & TASK_WAITING))
		return 0;
	__u32 pid = prev->tgid, tid = prev->pid;
	if (!wanted(prev, pid, tid))
		return 0;
	return offcpu_out(ctx, &offcpu_progs, prev, pid, tid, now, true);
}

/* prev_state reports one state bit (TASK_REPORT), or TASK_REPORT_MAX
 * (0x100) for a preempted task; these are the waiting ones, with
 * TASK_REPORT_IDLE (0x80). */
#define REPORT_WAITING 0x8f
#define REPORT_PREEMPTED 0x100

SEC("tracepoint/sched/sched_switch")
int offcpu_tp_switch(struct sched_switch_rec *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	offcpu_charge(NULL, ctx->next_pid, now);
	long state = ctx->prev_state;
	if ((state & REPORT_PREEMPTED) || !(state & REPORT_WAITING))
		return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32, tid = ctx->prev_pid;
	struct task_struct *prev = (struct task_struct *)bpf_get_current_task();
	if (!wanted(prev, pid, tid))
		return 0;
	if (have_task_pt_regs)
		prev = bpf_get_current_task_btf();
	offcpu_out(ctx, &offcpu_tp_progs, prev, pid, tid, now, false);
	return 0; // 1 would have the kernel also process the perf event
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
	notify(EVENT_EXEC, pid);
	// The old image's mappings must not unwind the new one: until user
	// space registers the new mappings, walks stop at the leaf, counted.
	bpf_map_delete_elem(&procs, &pid);
	bpf_map_delete_elem(&py_procs, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
