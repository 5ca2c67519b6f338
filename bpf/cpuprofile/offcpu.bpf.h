/* Off-CPU time: where threads wait, weighted by how long.
 *
 * On sched_switch, a user thread that leaves the CPU blocked (sleeping,
 * waiting for I/O, a lock, a signal to continue: not runnable) gets a
 * record: when it left, its kernel stack, and its user stack walked then,
 * in its own context, with the same walker as CPU samples. When the thread
 * is switched in again, the time it was away is added to that record's key
 * in offcpu_a/b, or, below min_block_ns, only counted.
 *
 * The kernel's walk of the kernel stack is most of the cost. Taking it
 * at switch-in from the sleeping task (bpf_get_task_stack) would cost
 * about a fifth less and only for intervals that reach min_block_ns, but
 * the kernel's walk of a task that is not running leaves out every
 * scheduler function (__sched: mutex_lock, io_schedule, do_nanosleep,
 * schedule_timeout, ...), which are the waits an off-CPU profile is for.
 *
 * A thread switched out while still runnable (preempted, or yielding) is
 * not off-CPU: it waits for a CPU, which is run-queue delay and belongs to
 * the run-queue histogram. It gets no record.
 *
 * Why walk at switch-out, before the duration is known: the walk reads the
 * thread's memory, so it can only run in the thread's context, and the
 * alternative (walking when the thread next returns to user space, at
 * syscall exit) costs every system call on the host to save the walks of
 * the intervals below the threshold, which at the default threshold are
 * few. The measurements are in the package documentation.
 *
 *   offcpu_start[tid] -> {key as the interval will be counted, start, epoch}
 *                        (with task_records: offcpu_task[task], start 0 when
 *                        none; user space lists them with offcpu_live)
 *   offcpu_a/b[key]   -> {intervals, nanoseconds}
 *   offcpu_sums       -> per-CPU counters: seen = recorded + below + lost
 */
#ifndef VIGIL_OFFCPU_BPF_H
#define VIGIL_OFFCPU_BPF_H

/* The user part of a record whose walk has not finished (never expected:
 * the walk ends before the thread can run again). */
#define STACK_PENDING -4

// Off-CPU intervals shorter than this are only counted; set from Go.
const volatile __u64 min_block_ns = 1000;
// The tp_btf sched_switch has a prev_state argument (5.18).
const volatile bool have_prev_state = false;
// tp_btf programs keep the records in task storage (5.11), where reading
// and clearing one costs less than in a hash; else in offcpu_start.
const volatile bool task_records = false;
// Which stacks an interval gets: OFF_KERNEL_STACK, OFF_USER_STACK or both
// (the kernel's walk of the kernel stack is most of the cost).
#define OFF_KERNEL_STACK 1
#define OFF_USER_STACK 2
const volatile __u32 off_stacks = OFF_KERNEL_STACK | OFF_USER_STACK;

/* Slots of offcpu_totals, in the order of drain.go's offTotals. Every
 * interval that ends with a record is seen, and is then recorded, below the
 * threshold or lost (with its nanoseconds); records the LRU map pushed out
 * are found by user space from started. The stack slots count intervals
 * recorded with a part of a stack lost. */
enum offcpu_slot {
	OFF_SEEN = 0,
	OFF_SEEN_NS,
	OFF_RECORDED,
	OFF_RECORDED_NS,
	OFF_BELOW,
	OFF_BELOW_NS,
	OFF_LOST_COUNTS_FULL,
	OFF_LOST_COUNTS_FULL_NS,
	OFF_LOST_EMPTY,
	OFF_LOST_EMPTY_NS,
	OFF_STARTED, // records written
	OFF_KSTACK_COLLISION,
	OFF_KSTACK_FULL,
	OFF_KSTACK_OTHER,
	OFF_USTACK_COLLISION,
	OFF_USTACK_FULL,
	OFF_USTACK_OTHER,
	OFF_USTACK_INCOMPLETE, // the walk did not finish (STACK_PENDING)
	OFF_NO_USER_REGS,      // the thread's user registers could not be read
	OFF_REPLACED,          // a record found still there when its thread blocked again
	OFF_NO_RECORD,         // task storage for a record could not be had
	OFF_SLOTS,
};

struct offcpu_totals {
	__u64 n[OFF_SLOTS];
};

/* The key of offcpu_a/b: a sample key and the epoch its stacks were stored
 * in, which is older than the buffer's when the thread blocked across a
 * drain (user space keeps those stacks until no record needs them). */
struct offcpu_key {
	struct sample_key key;
	__u32 epoch;
	__u32 pad;
};

struct offcpu_value {
	__u64 count;
	__u64 ns;
};

struct offcpu_rec {
	struct offcpu_key k;
	__u64 start;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct offcpu_key);
	__type(value, struct offcpu_value);
} offcpu_a SEC(".maps"), offcpu_b SEC(".maps");

/* An LRU so threads that never run again can't fill it; what it pushes out
 * is counted by user space (started - seen - live records). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct offcpu_rec);
} offcpu_start SEC(".maps");

/* The records of task_records; Go makes it a one-entry hash where the
 * kernel has no task storage (the programs then never use it). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct offcpu_rec);
} offcpu_task SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct offcpu_totals);
} offcpu_sums SEC(".maps");

static __always_inline struct offcpu_totals *totals(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&offcpu_sums, &zero);
}

static __always_inline void off_count(__u32 slot)
{
	struct offcpu_totals *t = totals();
	if (t && slot < OFF_SLOTS)
		t->n[slot] += 1; // per-CPU: no atomics
}

/* off_stack_id is stack_id for off-CPU records: the same classification,
 * counted in the off-CPU totals. */
static __always_inline __s32 off_stack_id(void *ctx, void *stacks, void *spill, __u64 flags, __u32 base)
{
	long id = get_stackid(ctx, stacks, spill, flags);
	if (id >= 0)
		return id;
	if (id == -EFAULT)
		return STACK_NONE;
	off_count(id == -EEXIST ? base : id == -ENOMEM ? base + 1 : base + 2);
	return STACK_LOST;
}

/* offcpu_commit writes the record of a thread leaving the CPU (current);
 * the walk of its user stack, if any, has ended. typed: a tp_btf program. */
static __always_inline int offcpu_commit(struct unwind_state *st, bool typed)
{
	if (typed && task_records) {
		struct offcpu_rec *tr = bpf_task_storage_get(&offcpu_task, bpf_get_current_task_btf(), 0,
							     BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!tr) {
			off_count(OFF_NO_RECORD);
			return 0;
		}
		if (tr->start)
			off_count(OFF_REPLACED); // its switch-in was never seen
		__builtin_memcpy(&tr->k.key, &st->key, sizeof(tr->k.key));
		tr->k.epoch = st->epoch;
		tr->k.pad = 0;
		tr->start = st->start;
		off_count(OFF_STARTED);
		return 0;
	}
	struct offcpu_rec r = {};
	__builtin_memcpy(&r.k.key, &st->key, sizeof(r.k.key));
	r.k.epoch = st->epoch;
	r.start = st->start;
	__u32 tid = st->key.tid;
	long err = bpf_map_update_elem(&offcpu_start, &tid, &r, BPF_NOEXIST);
	if (err == -EEXIST) {
		// Its switch-in was never seen: that interval is lost.
		off_count(OFF_REPLACED);
		err = bpf_map_update_elem(&offcpu_start, &tid, &r, BPF_ANY);
	}
	if (err == 0)
		off_count(OFF_STARTED);
	return 0;
}

/* offcpu_add adds one interval of ns to key in counts; false when the map
 * had no room. */
static __always_inline bool offcpu_add(void *counts, struct offcpu_key *key, __u64 ns)
{
	struct offcpu_value *v = bpf_map_lookup_elem(counts, key);
	if (v) {
		__sync_fetch_and_add(&v->count, 1);
		__sync_fetch_and_add(&v->ns, ns);
		return true;
	}
	struct offcpu_value nv = {.count = 1, .ns = ns};
	if (bpf_map_update_elem(counts, key, &nv, BPF_NOEXIST) == 0)
		return true;
	// Another CPU may have inserted the same key meanwhile.
	v = bpf_map_lookup_elem(counts, key);
	if (!v)
		return false;
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->ns, ns);
	return true;
}

/* offcpu_charge ends the off-CPU interval of thread tid, switched in now;
 * task is the thread when the program has it typed, else NULL. */
static __always_inline void offcpu_charge(struct task_struct *task, __u32 tid, __u64 now)
{
	if (tid == 0)
		return;
	struct offcpu_rec *r;
	if (task && task_records) {
		r = bpf_task_storage_get(&offcpu_task, task, 0, 0);
		if (!r || !r->start)
			return;
	} else {
		r = bpf_map_lookup_elem(&offcpu_start, &tid);
		if (!r)
			return;
	}
	struct offcpu_totals *t = totals();
	if (!t)
		return;
	__u64 ns = now - r->start;
	struct offcpu_key k;
	__builtin_memcpy(&k, &r->k, sizeof(k));
	if (task && task_records)
		r->start = 0; // the task keeps its storage for the next record
	else
		bpf_map_delete_elem(&offcpu_start, &tid);
	t->n[OFF_SEEN] += 1;
	t->n[OFF_SEEN_NS] += ns;
	if (ns < min_block_ns) {
		t->n[OFF_BELOW] += 1;
		t->n[OFF_BELOW_NS] += ns;
		return;
	}
	if (k.key.ustack == STACK_PENDING) {
		k.key.ustack = STACK_LOST;
		t->n[OFF_USTACK_INCOMPLETE] += 1;
	}
	if (k.key.kstack == STACK_NONE && k.key.ustack == STACK_NONE) {
		t->n[OFF_LOST_EMPTY] += 1;
		t->n[OFF_LOST_EMPTY_NS] += ns;
		return;
	}
	void *counts = (active_buf & 1) ? (void *)&offcpu_b : (void *)&offcpu_a;
	if (offcpu_add(counts, &k, ns)) {
		t->n[OFF_RECORDED] += 1;
		t->n[OFF_RECORDED_NS] += ns;
	} else {
		t->n[OFF_LOST_COUNTS_FULL] += 1;
		t->n[OFF_LOST_COUNTS_FULL_NS] += ns;
	}
}

/* The bpf_iter context of a task iterator. */
struct seq_file;
struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

/* offcpu_live lists the records of threads still blocked (task_records),
 * which user space can't walk itself: the drain counts them and keeps the
 * stacks they name. */
SEC("iter/task")
int offcpu_live(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task)
		return 0;
	struct offcpu_rec *r = bpf_task_storage_get(&offcpu_task, task, 0, 0);
	if (r && r->start)
		bpf_seq_write(ctx->meta->seq, r, sizeof(*r));
	return 0;
}

#endif
