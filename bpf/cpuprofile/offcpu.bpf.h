/* Off-CPU time: where threads wait, weighted by how long.
 *
 * On sched_switch, a user thread that leaves the CPU blocked (sleeping,
 * waiting for I/O, a lock, a signal to continue: not runnable) gets a
 * record: when it left, its kernel stack, and its user stack walked then,
 * in its own context, with the same walker as CPU samples. When the thread
 * is switched in again, the time it was away is added to that record's key
 * in offcpu_a/b, or, below min_block_ns, only counted.
 *
 * The kernel's walk of the kernel stack costs more than the rest together,
 * and the user walk most of the rest; each thread's cache of the stacks it
 * blocked with (below) saves both when the thread blocks again where it
 * blocked before, which is how most threads wait. Taking the kernel stack
 * at switch-in from the sleeping task
 * (bpf_get_task_stack) would cost about a fifth less than a walk at
 * switch-out, and only for intervals that reach min_block_ns, but
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
// (the kernel's walk of a kernel stack its thread's cache doesn't hold is
// the larger part of the cost).
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
	OFF_KSTACK_REUSED,     // kernel stacks the thread's cache gave, not walked
	OFF_USTACK_REUSED,     // user stacks the thread's cache gave, not walked
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

/* The stack cache: kernel stacks here, user stacks in struct ucache_way
 * below, both in one task storage value per thread (about 1.6 KiB).
 *
 * A thread that blocks again where it blocked before has the same kernel
 * stack, and the kernel's walk of it (ORC tables, frame by frame) is most of
 * what recording a blocked switch costs. Each thread keeps, in task storage,
 * a few kernel stacks it blocked with in this drain interval: the stack's id,
 * its return addresses, and where on the thread's kernel stack the walk found
 * each. A switch-out that finds the same return addresses in the same places
 * is the same call chain, and reuses the id instead of walking; any other
 * is walked and replaces the oldest of the thread's ways.
 *
 * "The same places": every frame from this program's up to the system
 * call's sits at a fixed distance above this program's frame, since each
 * frame's size follows from its code. The kernel moves that whole part of
 * the stack by a random offset at each system call (randomize_kstack_offset),
 * below the frames of the system call's entry, which stay at a fixed
 * distance from the top of the stack. So a return address is looked for
 * where it was relative to this program's frame, or where it was on the
 * stack (relative to its top): the walk (from this frame, by the code at
 * each address) reads the same addresses and finds the same frames. (What
 * this can't tell from the same chain: another chain whose live frames
 * hold, word for word, the same return addresses at every one of those
 * places, which no code path does by accident.)
 *
 * Return addresses are found after a walk by scanning the stack above the
 * frame, in order; a stack any of whose addresses is not found there (a
 * stack deeper than KC_WORDS words or KC_FRAMES frames, an address outside
 * the kernel's top 2 GiB) is walked every time. Ids are reused only in the
 * epoch they were stored in, since each drain clears the other buffer's
 * stacks. tp_btf with task storage only (5.11+): the cache needs the typed
 * task.
 */
#define KC_WAYS 4
#define KC_FRAMES 32
#define KC_LEAD 4 // frames the walk reports below this program's frame
#define KC_WORDS 512
#define KC_IPS (KC_LEAD + KC_FRAMES) // one more than a way holds: a deeper stack fills it
// THREAD_SIZE on x86-64 without KASAN; with it the frame is further up and
// nothing is cached.
#define KC_STACK_SIZE 16384
// Kernel text, modules and BPF programs are in the top 2 GiB (x86-64).
#define KC_TEXT_HIGH 0xffffffff00000000ULL

// Set from Go: reuse kernel and user stacks (needs task_records).
const volatile bool cache_stacks = false;

struct kcache_way {
	__s32 id; // the stack's id in the stack maps of epoch
	__u32 epoch;
	__u16 fp_off;         // this program's frame, from the base of the kernel stack
	__u16 n;              // frames; 0: an empty way
	__u16 rel[KC_FRAMES]; // word of each return address above the frame
	__u32 lo[KC_FRAMES];  // each return address, less KC_TEXT_HIGH
};

/* A user stack the thread blocked with: the walk that started at ip and
 * sp (and bp, when it used it) read the words val[i] at sp+off[i] and
 * nothing else: return addresses where every CFA is relative to sp, or
 * saved frame pointers and return addresses where it walked with frame
 * pointers from the start (unwind.bpf.h marks any other walk uncached).
 * With the same tables, finding the same words there again is walking it
 * again. Only within the epoch it was stored
 * in: a drain's tables and mappings changes are then seen by a new walk,
 * and the stack's key in ustacks of that epoch is still there. Not for
 * Python processes, whose Python frames are read apart. */
struct ucache_way {
	__u64 ip, sp, bp;
	__u64 hash;  // the stack's key in ustacks of epoch
	__u32 epoch;
	__u16 n;     // 0: an empty way
	__u16 span;  // bytes above sp that hold them
	__u32 use_bp; // the walk used the first RBP: bp must match too
	__u32 pad;
	__u16 off[UC_FRAMES];
	__u64 val[UC_FRAMES];
};

#define UC_WAYS 2

struct stack_cache {
	struct kcache_way way[KC_WAYS];
	__u32 next;
	__u32 misses; // in a row: a thread that keeps blocking in new places fills less
	struct ucache_way uway[UC_WAYS];
	__u32 unext;
	__u32 pad;
};

struct kcache_scratch {
	__u64 fp;
	__u64 words[KC_WORDS];
	__u64 ips[64]; // KC_IPS used; 64 so that an index masked with 63 fits
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct stack_cache);
} offcpu_stack_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kcache_scratch);
} kcache_scratch SEC(".maps");

/* kc_eq is 1 when a == b, else 0, and kc_lt 1 when a < b (both below
 * 2^63): in assembly, since the compiler turns the same C into a branch,
 * and a branch per word would have the verifier walk every path. */
static __always_inline __u64 kc_eq(__u64 a, __u64 b)
{
	__u64 r, t;
	asm volatile("%[r] = %[a]\n\t"
		     "%[r] ^= %[b]\n\t"
		     "%[t] = %[r]\n\t"
		     "%[t] = -%[t]\n\t"
		     "%[r] |= %[t]\n\t"
		     "%[r] >>= 63\n\t"
		     "%[r] ^= 1"
		     : [r] "=&r"(r), [t] "=&r"(t)
		     : [a] "r"(a), [b] "r"(b));
	return r;
}

static __always_inline __u64 kc_lt(__u64 a, __u64 b)
{
	__u64 r;
	asm volatile("%[r] = %[a]\n\t"
		     "%[r] -= %[b]\n\t"
		     "%[r] >>= 63"
		     : [r] "=&r"(r)
		     : [a] "r"(a), [b] "r"(b));
	return r;
}

/* kc_found is 1 when frame i of way is on the stack read into s->words
 * (avail words from the frame at fp_off up): at its distance above the
 * frame, or at its place on the stack. */
static __always_inline __u64 kc_found(struct kcache_way *way, struct kcache_scratch *s, __u64 i,
				      __u32 fp_off, __u32 avail)
{
	__u64 want = KC_TEXT_HIGH | way->lo[i & (KC_FRAMES - 1)];
	__u64 rel = way->rel[i & (KC_FRAMES - 1)];
	__u64 near = kc_eq(s->words[rel & (KC_WORDS - 1)], want) & kc_lt(rel, avail);
	// Its place on the stack, as a word above the frame now, offset by
	// KC_WORDS*8 to stay unsigned.
	__u64 at = rel + way->fp_off / 8 + KC_WORDS * 8 - fp_off / 8;
	__u64 placed = kc_eq(s->words[at & (KC_WORDS - 1)], want) & kc_lt(KC_WORDS * 8 - 1, at) &
		       kc_lt(at, KC_WORDS * 8 + avail);
	return near | placed;
}

/* kc_hit returns the id of a way of c that matches the stack read into
 * s->words, or -1. A way's middle frame picks the one way whose other
 * frames are then checked, so the program has one loop of unknown length. */
static __always_inline __s32 kc_hit(struct stack_cache *c, struct kcache_scratch *s, __u32 fp_off,
				    __u32 avail, __u32 epoch)
{
	struct kcache_way *hit = NULL;
	for (int w = 0; w < KC_WAYS; w++) {
		struct kcache_way *way = &c->way[w];
		__u32 n = way->n;
		if (n == 0 || n > KC_FRAMES || way->epoch != epoch)
			continue;
		if (kc_found(way, s, n / 2, fp_off, avail)) {
			hit = way;
			break;
		}
	}
	if (!hit)
		return -1;
	__u32 n = hit->n;
	__u64 all = 1;
	for (int i = 0; i < KC_FRAMES; i++) {
		if (i >= n)
			break;
		__u64 r = i;
		HIDE(r);
		all &= kc_found(hit, s, r, fp_off, avail);
	}
	return all ? hit->id : -1;
}

/* kc_fill remembers stack id, just walked, in a way of c when its return
 * addresses are all found in s->words, above the frame; the second walk
 * (bpf_get_stack) gives them, since a program can't read a stack map. */
static __always_inline void kc_fill(void *ctx, struct stack_cache *c, struct kcache_scratch *s, __u32 fp_off,
				    __u32 avail, __u32 epoch, __s32 id)
{
	long len = bpf_get_stack(ctx, s->ips, KC_IPS * 8, 0);
	if (len <= 0 || len >= KC_IPS * 8)
		return; // failed, or deeper than a way holds
	__u32 n = (__u32)len / 8;
	// The first frame found above this program's is its caller's return
	// address, at fp+8; the walk's frames before it are below the frame.
	__u32 j0 = KC_LEAD;
	for (int i = KC_LEAD - 1; i >= 0; i--)
		if (s->ips[i] == s->words[1])
			j0 = i;
	if (j0 >= KC_LEAD || n <= j0 || n - j0 >= KC_FRAMES)
		return;
	struct kcache_way *way = &c->way[c->next & (KC_WAYS - 1)];
	way->n = 0;
	// One pass over the words finds each address after the one before,
	// branch-free (rel[j] is rewritten until word k holds ips[j]), so the
	// verifier walks one path through the loop.
	__u64 j = j0, high = 1;
	for (__u64 k = 1; k < KC_WORDS; k++) {
		// Words past avail are stale; the scan ends when all are found.
		if (k >= avail || j >= n)
			break;
		__u64 ip = s->ips[j & 63];
		__u64 m = kc_eq(s->words[k], ip);
		__u64 d = (j - j0) & (KC_FRAMES - 1);
		way->rel[d] = k;
		way->lo[d] = (__u32)ip;
		high &= kc_eq(ip & KC_TEXT_HIGH, KC_TEXT_HIGH) | (1 ^ m);
		j += m;
	}
	if (j != n || !high)
		return;
	way->id = id;
	way->epoch = epoch;
	way->fp_off = fp_off;
	way->n = n - j0;
	c->next++;
}

/* off_kstack is the kernel stack of prev, the current task, leaving the CPU:
 * a stack the thread blocked with before, else walked. */
static __always_inline __s32 off_kstack(void *ctx, struct task_struct *prev, void *stacks, void *spill,
					__u32 epoch, bool typed)
{
	struct stack_cache *c = NULL;
	struct kcache_scratch *s = NULL;
	if (typed && task_records && cache_stacks) {
		__u32 zero = 0;
		s = bpf_map_lookup_elem(&kcache_scratch, &zero);
		if (s)
			c = bpf_task_storage_get(&offcpu_stack_cache, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	}
	if (!c || !s)
		return off_stack_id(ctx, stacks, spill, 0, OFF_KSTACK_COLLISION);
	// A fill walks the stack a second time: after KC_WAYS misses in a row
	// (a thread whose waits don't repeat, or more of them than it has
	// ways) only every 16th miss fills, so such a thread pays little more
	// than the walk; a drain's new epoch costs one miss per stack. With
	// no way of this epoch and no fill, the stack isn't even read.
	__u32 misses = c->misses;
	bool fill = misses < KC_WAYS || (misses & 15) == 0, any = false;
	for (int w = 0; w < KC_WAYS; w++)
		any |= c->way[w].n > 0 && c->way[w].epoch == epoch;
	if (!fill && !any) {
		c->misses = misses + 1;
		return off_stack_id(ctx, stacks, spill, 0, OFF_KSTACK_COLLISION);
	}
	// This program's frame pointer, as a number (a store to a map and
	// back: the verifier lets privileged programs do that).
	__u64 fp;
	asm volatile("%0 = r10" : "=r"(fp));
	*(volatile __u64 *)&s->fp = fp;
	fp = *(volatile __u64 *)&s->fp;
	__u64 base = (__u64)BPF_CORE_READ(prev, stack);
	__u64 off = fp - base;
	if (base == 0 || off < 64 || off >= KC_STACK_SIZE)
		return off_stack_id(ctx, stacks, spill, 0, OFF_KSTACK_COLLISION);
	__u32 fp_off = (__u32)off;
	// The stack from this frame to its top (a few hundred words).
	__u32 avail = (KC_STACK_SIZE - fp_off) / 8;
	if (avail > KC_WORDS - 1)
		avail = KC_WORDS - 1; // as many as a masked size can read
	// Masked and scaled in 64-bit instructions, so the verifier of every
	// kernel keeps the bound (6.1's loses it through the 32-bit ones clang
	// would otherwise pick).
	__u64 size = avail;
	asm volatile("%[size] &= %[mask]\n\t"
		     "%[size] <<= 3"
		     : [size] "+r"(size)
		     : [mask] "i"(KC_WORDS - 1));
	if (size < 16 || bpf_probe_read_kernel(s->words, size, (void *)fp) != 0)
		return off_stack_id(ctx, stacks, spill, 0, OFF_KSTACK_COLLISION);
	__s32 id = kc_hit(c, s, fp_off, avail, epoch);
	if (id >= 0) {
		c->misses = 0;
		off_count(OFF_KSTACK_REUSED);
		return id;
	}
	id = off_stack_id(ctx, stacks, spill, 0, OFF_KSTACK_COLLISION);
	c->misses = misses + 1;
	if (id >= 0 && fill)
		kc_fill(ctx, c, s, fp_off, avail, epoch, id);
	return id;
}

/* uc_hit returns the way of c holding the user stack a walk from regs
 * would find now, or NULL: the same start, and every return address the
 * walk read back at its place (read into s->words). */
static __always_inline struct ucache_way *uc_hit(struct stack_cache *c, struct kcache_scratch *s,
						 struct user_regs *regs, __u32 epoch)
{
	struct ucache_way *way = NULL;
	for (int w = 0; w < UC_WAYS; w++) {
		struct ucache_way *u = &c->uway[w];
		if (u->n > 0 && u->epoch == epoch && u->ip == regs->ip && u->sp == regs->sp &&
		    (!u->use_bp || u->bp == regs->bp)) {
			way = u;
			break;
		}
	}
	if (!way)
		return NULL;
	__u64 size = way->span;
	asm volatile("%[size] &= %[mask]" : [size] "+r"(size) : [mask] "i"(KC_WORDS * 8 - 1));
	if (size < 8 || bpf_probe_read_user(s->words, size, (void *)regs->sp) != 0)
		return NULL;
	__u32 n = way->n;
	__u64 all = 1;
	for (int i = 0; i < UC_FRAMES; i++) {
		if (i >= n)
			break;
		__u64 r = i;
		HIDE(r);
		__u64 at = way->off[r & (UC_FRAMES - 1)] / 8;
		all &= kc_eq(s->words[at & (KC_WORDS - 1)], way->val[r & (UC_FRAMES - 1)]) & kc_lt(at * 8, size);
	}
	return all ? way : NULL;
}

/* uc_fill remembers the user stack st just walked and stored, when the
 * cache can replay its walk. */
static __always_inline void uc_fill(struct unwind_state *st)
{
	if (st->uncached || st->nlog == 0 || st->nlog > UC_FRAMES || st->key.ustack != STACK_HASHED)
		return;
	struct stack_cache *c = bpf_task_storage_get(&offcpu_stack_cache, bpf_get_current_task_btf(), 0,
						BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return;
	struct ucache_way *way = &c->uway[c->unext & (UC_WAYS - 1)];
	way->n = 0;
	__u32 n = st->nlog, span = 0;
	for (int i = 0; i < UC_FRAMES; i++) {
		if (i >= n)
			break;
		__u64 r = i;
		HIDE(r);
		__u16 off = st->log_off[r & (UC_FRAMES - 1)];
		way->off[r & (UC_FRAMES - 1)] = off;
		way->val[r & (UC_FRAMES - 1)] = st->log_val[r & (UC_FRAMES - 1)];
		if (off + 8 > span)
			span = off + 8;
	}
	way->ip = st->stack.frames[0];
	way->sp = st->sp0;
	way->bp = st->bp0;
	way->use_bp = st->bp_used;
	way->hash = st->key.uhash;
	way->epoch = st->epoch;
	way->span = span;
	way->n = n;
	c->unext++;
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
