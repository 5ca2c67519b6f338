/* User-stack unwinding from the binaries' own call-frame tables (x86-64).
 *
 * User space turns each mapped file's .eh_frame/.debug_frame into rules and
 * writes them into four shared arrays; every process gets a sorted list of
 * its executable mappings. Per frame the walker finds the mapping of the PC,
 * the 64 KiB page of the file's table, the row by binary search inside the
 * page, then the rule, and computes the caller's registers from it:
 *
 *   procs[pid]            -> mappings {start, len, bias, file}
 *   unwind_files[file]    -> {first page, page count, index of its first page}
 *   unwind_pages[i]       -> {first row, row count}  (rows start at each page start)
 *   unwind_rows[k/2]      -> two rows of {u16 pc & 0xffff, u16 rule}
 *   unwind_rules[rule]    -> {CFA kind, RBP kind, CFA offset, RBP offset}
 *
 * Where no table covers a PC (JIT code, Go, a file without CFI) that frame
 * is walked with the frame pointer. A stack that can't be walked to its end
 * keeps its frames and ends in a marker frame naming why, counted too.
 *
 * Walking 127 frames in one program is more than the verifier accepts on
 * older kernels (5.10 has no bpf_loop), so the walker handles
 * FRAMES_PER_CALL frames and tail-calls itself with its state in a per-CPU
 * scratch slot.
 */
#ifndef VIGIL_UNWIND_BPF_H
#define VIGIL_UNWIND_BPF_H

#define BPF_MAP_TYPE_PROG_ARRAY 3
#define BPF_F_MMAPABLE (1U << 10)

#define MAX_USER_FRAMES 127
#define FRAMES_PER_CALL 8
#define MAX_MAPPINGS 256
#define PAGE_BITS 16
/* The walker copies the user stack a page at a time: one read serves every
 * frame in that page, where reading each return address on its own costs
 * a user-memory access (hundreds of ns) per frame. */
#define STACK_CHUNK 4096
/* The off-CPU user stack cache replays walks that read up to UC_FRAMES
 * words (a return address per table frame, two words per frame-pointer
 * frame) within UC_SPAN bytes above the first sp. */
#define UC_FRAMES 32
#define UC_SPAN 4088

/* unwind.Rule kinds: the order of symbolizer/unwind's CFAKind. */
enum cfa_kind {
	CFA_NONE = 0,
	CFA_RSP,
	CFA_RBP,
	CFA_PLT,
	CFA_SIGNAL,
	CFA_STOP,
	CFA_INVALID,
};

enum rbp_kind {
	RBP_SAME = 0,
	RBP_AT_CFA,
	RBP_UNDEFINED,
};

enum file_state {
	FILE_LOADING = 0, // known, table not written yet
	FILE_READY,       // table written
	FILE_NO_TABLE,    // no usable CFI: frame pointers
};

/* Marker frames: a walk that stopped early ends in 0xffffffffffff00NN,
 * above every user address, with NN one of these. */
#define MARKER_BASE 0xffffffffffff0000ULL
enum truncation {
	TRUNC_PROCESS_NOT_LOADED = 1, // the process's mappings weren't registered yet
	TRUNC_TABLE_NOT_LOADED,       // its file's table was still being built
	TRUNC_UNSUPPORTED_RULE,       // a rule vigil can't execute (counted in user space by why)
	TRUNC_BAD_READ,               // reading the stack failed
	TRUNC_DEPTH,                  // deeper than MAX_USER_FRAMES
	TRUNC_BAD_FRAME,              // a rule moved the stack pointer backwards, or a frame pointer is misaligned or links to itself
};

struct mapping {
	__u64 start;
	__u64 bias; // file address = address - bias
	__u32 len;
	__u32 file; // 0: no table, walk with frame pointers
};

struct proc {
	__u32 n;
	__u32 pad;
	__u64 refresh_ns; // last time BPF asked user space to read the mappings again
	struct mapping m[MAX_MAPPINGS];
};

struct file_info {
	__u64 first_page; // file address >> PAGE_BITS of the table's first page
	__u32 page_base;  // index of that page in unwind_pages
	__u32 n_pages;
	__u32 state;
	__u32 pad;
};

struct page_info {
	__u32 first_row;
	__u32 n_rows;
};

struct rule {
	__u8 cfa_kind;
	__u8 rbp_kind;
	__s16 rbp_off;
	__s32 cfa_off;
};

/* One slot more than MAX_USER_FRAMES so that an index masked with 127 is
 * provably inside the array for every verifier (older ones don't carry the
 * len < MAX_USER_FRAMES check over to the masked index). */
struct ustack {
	__u64 len;
	__u64 frames[MAX_USER_FRAMES + 1];
};

/* x86-64 struct pt_regs (also bpf_user_pt_regs_t, the perf_event context). */
struct user_regs {
	__u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

/* What a walk is for: a CPU sample, counted when it ends, or an off-CPU
 * interval starting, whose record is written when it ends. Each has its own
 * scratch slot, so a walk of one kind never sees the other's state. */
enum walk_mode {
	MODE_CPU = 0,
	MODE_OFFCPU = 1,
	MODES,
};

struct unwind_state {
	struct sample_key key;
	__u64 ip, sp, bp;
	__u64 hash;
	__u64 start;      // off-CPU: when the thread left the CPU
	__u32 mode;       // enum walk_mode
	__u32 epoch;      // active_buf when the walk started
	__u32 buf;        // which buffer the sample belongs to
	__u32 return_addr; // ip is a return address: look up ip-1
	__u32 n_table;     // frames walked with a table rule
	__u32 n_fp;        // frames walked with the frame pointer
	__u32 last_map;    // index of the previous frame's mapping
	__u32 chunk_len;   // bytes of the user stack copied into chunk
	__u64 chunk_base;  // user address of chunk[0]
	/* For the off-CPU stack cache (offcpu.bpf.h): the words the walk
	 * read, at their offsets from the first sp; whether it used the
	 * first RBP (a frame-pointer walk from the start); and whether it
	 * took a step that depends on anything else (a frame pointer after a
	 * table frame, a signal frame). */
	__u64 sp0, bp0;
	__u32 uncached;
	__u32 nlog;
	__u32 bp_used;
	__u32 pad_uc;
	__u16 log_off[UC_FRAMES];
	__u64 log_val[UC_FRAMES];
	struct ustack stack;
	__u8 chunk[STACK_CHUNK + 16];
};

/* An LRU so a busy host can't fill it: a process pushed out is announced
 * and registered again at its next sample. Preallocated, as perf_event
 * programs need before 6.1. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct proc);
} procs SEC(".maps");

/* Sizes are set from Go; with frame-pointer unwinding they are one entry. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct file_info);
} unwind_files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct page_info);
} unwind_pages SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} unwind_rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct rule);
} unwind_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MODES);
	__type(key, __u32);
	__type(value, struct unwind_state);
} unwind_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct ustack);
} ustacks_a SEC(".maps"), ustacks_b SEC(".maps");

/* Tail-call targets, 0: the user walker, 1: the Python walker. A program
 * array holds programs of one type only (and tracing programs of one attach
 * point), so each entry point has its own: the perf_event sampler's, and the
 * off-CPU hook's for tp_btf and for the classic tracepoint. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} unwind_progs SEC(".maps"), offcpu_progs SEC(".maps"), offcpu_tp_progs SEC(".maps");

static __always_inline void push_frame(struct unwind_state *st, __u64 pc)
{
	__u64 d = st->stack.len;
	if (d >= MAX_USER_FRAMES)
		return;
	st->stack.frames[d & 127] = pc;
	st->stack.len = d + 1;
	st->hash = (st->hash ^ pc) * 0x100000001b3ULL; // FNV-1a over frames
}

/* The binary searches below are branch-free: a comparison becomes 0 or 1
 * by the sign of a subtraction and moves lo or hi arithmetically, hidden
 * from the compiler so it can't turn it back into a branch. With a branch
 * per step the verifier would explore every path (2^steps per frame);
 * this way each step is one straight line. */
#define HIDE(x) asm volatile("" : "+r"(x))

/* le returns 1 when a <= b, for values below 2^63. */
static __always_inline __u64 le(__u64 a, __u64 b)
{
	__u64 r = 1 ^ ((b - a) >> 63);
	HIDE(r);
	return r;
}

/* find_mapping returns the mapping holding pc, by binary search over the
 * process's mappings sorted by start. Addresses are user addresses, below
 * 2^63. */
static __always_inline struct mapping *find_mapping(struct proc *p, __u64 pc, __u32 *last)
{
	// Callers are often in the same file as their callees: try the
	// mapping of the previous frame first.
	struct mapping *c = &p->m[*last & (MAX_MAPPINGS - 1)];
	if (pc - c->start < c->len)
		return c;
	__u64 lo = 0, hi = p->n;
	if (hi > MAX_MAPPINGS)
		hi = MAX_MAPPINGS;
#pragma clang loop unroll(disable)
	for (int i = 0; i < 9; i++) {
		__u64 mid = (lo + hi) >> 1;
		__u64 active = le(lo + 1, hi);
		__u64 right = le(p->m[mid & (MAX_MAPPINGS - 1)].start, pc) & active;
		__u64 left = (right ^ 1) & active;
		lo += right * (mid + 1 - lo);
		hi -= left * (hi - mid);
	}
	if (lo == 0)
		return 0;
	struct mapping *m = &p->m[(lo - 1) & (MAX_MAPPINGS - 1)];
	if (pc - m->start >= m->len)
		return 0;
	*last = (lo - 1) & (MAX_MAPPINGS - 1);
	return m;
}

/* find_rule returns the rule for file address addr, or 0 (no rule). Each
 * page's rows start at the page start, so the answer is the last row at or
 * before addr within the page. */
static __always_inline struct rule *find_rule(struct file_info *f, __u64 addr)
{
	__u64 page = (addr >> PAGE_BITS) - f->first_page;
	if ((addr >> PAGE_BITS) < f->first_page || page >= f->n_pages)
		return 0;
	__u32 pidx = f->page_base + (__u32)page;
	struct page_info *pg = bpf_map_lookup_elem(&unwind_pages, &pidx);
	if (!pg || pg->n_rows == 0)
		return 0;
	__u64 want = addr & 0xffff;
	__u64 lo = 0, hi = pg->n_rows;
	__u32 first = pg->first_row;
#pragma clang loop unroll(disable)
	for (int i = 0; i < 17; i++) {
		if (lo >= hi)
			break;
		__u64 mid = (lo + hi) >> 1;
		__u64 active = le(lo + 1, hi);
		__u32 k = first + (__u32)mid;
		__u32 idx = k >> 1;
		__u64 *two = bpf_map_lookup_elem(&unwind_rows, &idx);
		if (!two)
			return 0;
		__u64 row_pc = ((*two >> ((k & 1) * 32)) >> 16) & 0xffff;
		__u64 right = le(row_pc, want) & active;
		__u64 left = (right ^ 1) & active;
		lo += right * (mid + 1 - lo);
		hi -= left * (hi - mid);
	}
	if (lo == 0)
		return 0;
	__u32 k = first + (__u32)(lo - 1);
	__u32 idx = k >> 1;
	__u64 *two = bpf_map_lookup_elem(&unwind_rows, &idx);
	if (!two)
		return 0;
	__u32 rule = (*two >> ((k & 1) * 32)) & 0xffff;
	if (rule == 0)
		return 0;
	return bpf_map_lookup_elem(&unwind_rules, &rule);
}

/* The bytes of a signal-return trampoline (glibc and musl __restore_rt):
 * mov $15,%rax; syscall. Checked where no table says "signal frame". */
static __always_inline bool is_sigreturn(__u64 pc)
{
	__u64 code[2] = {};
	if (bpf_probe_read_user(code, 9, (void *)pc) != 0)
		return false;
	return code[0] == 0x0f0000000fc0c748ULL && (code[1] & 0xff) == 0x05;
}

/* Registers of the interrupted code from the rt_sigframe the trampoline
 * returns through: sp points at its ucontext; uc_mcontext starts 40 bytes
 * in, with rbp, rsp and rip at 80, 120 and 128 within it. */
static __always_inline int signal_frame(struct unwind_state *st)
{
	st->uncached = 1;
	__u64 base = st->sp + 40;
	__u64 bp, sp, ip;
	if (bpf_probe_read_user(&bp, 8, (void *)(base + 80)) ||
	    bpf_probe_read_user(&sp, 8, (void *)(base + 120)) ||
	    bpf_probe_read_user(&ip, 8, (void *)(base + 128)))
		return TRUNC_BAD_READ;
	st->bp = bp;
	st->sp = sp;
	st->ip = ip;
	st->return_addr = 0; // the interrupted instruction itself
	count_lost(UNW_SIGNAL_FRAMES);
	return 0;
}

/* stack_read reads n (1 or 2) words of the user stack at addr, from the
 * copy in st->chunk when it holds them, else by copying from addr to the end
 * of its page (a mapped page, since addr is in it), which serves the
 * frames above this one too. A read across a page boundary goes direct. */
static __always_inline int stack_read(struct unwind_state *st, __u64 addr, __u64 *out, __u32 n)
{
	__u64 off = addr - st->chunk_base;
	if (addr < st->chunk_base || off + n * 8 > st->chunk_len) {
		__u32 len = STACK_CHUNK - (addr & (STACK_CHUNK - 1));
		if (len < n * 8)
			return bpf_probe_read_user(out, n * 8, (void *)addr) ? -1 : 0;
		if (len > STACK_CHUNK)
			return -1;
		if (bpf_probe_read_user(st->chunk, len, (void *)addr)) {
			st->chunk_len = 0;
			return -1;
		}
		st->chunk_base = addr;
		st->chunk_len = len;
		off = 0;
	}
	off &= STACK_CHUNK - 1;
	out[0] = *(__u64 *)(st->chunk + off);
	if (n == 2)
		out[1] = *(__u64 *)(st->chunk + off + 8);
	return 0;
}

/* uc_log notes a word the walk read, for the off-CPU cache; nothing once
 * the walk is one the cache can't replay, or a CPU sample's. */
static __always_inline void uc_log(struct unwind_state *st, __u64 addr, __u64 val)
{
	if (st->uncached)
		return;
	__u64 off = addr - st->sp0;
	__u32 i = st->nlog;
	if (i < UC_FRAMES && off <= UC_SPAN - 8 && (off & 7) == 0) {
		// Masked in an instruction of its own, which clang can't fold
		// into an address the verifier can't bound.
		__u64 k = i;
		asm volatile("%[k] &= %[m]" : [k] "+r"(k) : [m] "i"(UC_FRAMES - 1));
		st->log_off[k] = off;
		st->log_val[k] = val;
		st->nlog = i + 1;
	} else {
		st->uncached = 1;
	}
}

/* frame_pointer_step walks one frame with RBP: the caller's RBP at [rbp],
 * the return address above it. */
static __always_inline int frame_pointer_step(struct unwind_state *st)
{
	__u64 bp = st->bp, saved[2];
	// From the start (Go, JIT code), RBP is the first one or a word
	// read; after a table frame it may be one no rule said where to find.
	if (st->n_table)
		st->uncached = 1;
	st->bp_used = 1;
	if (bp == 0)
		return -1; // the outermost frame
	// The chain may go down as well as up: Go's systemstack continues on
	// the goroutine's stack, often below the thread's. Only a misaligned
	// pointer or one that links to itself is surely wrong; the depth
	// limit bounds the rest, as in the kernel's own walk.
	if (bp & 7)
		return TRUNC_BAD_FRAME;
	if (stack_read(st, bp, saved, 2))
		return TRUNC_BAD_READ;
	if (saved[0] == bp)
		return TRUNC_BAD_FRAME;
	uc_log(st, bp, saved[0]);
	uc_log(st, bp + 8, saved[1]);
	st->bp = saved[0];
	st->ip = saved[1];
	st->sp = bp + 16;
	st->return_addr = 1;
	st->n_fp++;
	return 0;
}

static __always_inline int rule_step(struct unwind_state *st, struct rule *r, __u64 pc)
{
	__u64 cfa;
	switch (r->cfa_kind) {
	case CFA_RSP:
		cfa = st->sp + r->cfa_off;
		break;
	case CFA_RBP:
		cfa = st->bp + r->cfa_off;
		st->uncached = 1;
		break;
	case CFA_PLT:
		cfa = st->sp + 8 + (((pc & 15) >= (__u64)r->cfa_off) ? 8 : 0);
		break;
	case CFA_SIGNAL:
		return signal_frame(st);
	case CFA_STOP:
		return -1;
	default:
		return TRUNC_UNSUPPORTED_RULE;
	}
	if (cfa <= st->sp)
		return TRUNC_BAD_FRAME;
	__u64 ra;
	if (stack_read(st, cfa - 8, &ra, 1))
		return TRUNC_BAD_READ;
	// The walk's inputs, for the off-CPU cache: with every CFA relative
	// to sp, the return addresses (and the tables) decide it alone.
	uc_log(st, cfa - 8, ra);
	if (r->rbp_kind == RBP_AT_CFA) {
		__u64 bp;
		if (stack_read(st, cfa + r->rbp_off, &bp, 1))
			return TRUNC_BAD_READ;
		st->bp = bp;
	} else if (r->rbp_kind == RBP_UNDEFINED) {
		st->bp = 0;
	}
	st->sp = cfa;
	st->ip = ra;
	st->return_addr = 1;
	st->n_table++;
	return 0;
}

/* maybe_refresh asks user space, at most twice a second per process, to
 * read the mappings again: a PC outside every known mapping is usually a
 * library opened or code generated after the process was registered. */
static __always_inline void maybe_refresh(struct proc *p, __u32 pid)
{
	__u64 now = bpf_ktime_get_ns();
	if (now - p->refresh_ns < 500000000ULL)
		return;
	p->refresh_ns = now;
	notify(EVENT_MAPS_CHANGED, pid);
}

/* unwind_step records the current frame and moves to its caller. It
 * returns 0 to go on, -1 at the outermost frame, or a truncation reason. */
static __always_inline int unwind_step(struct unwind_state *st, struct proc *p)
{
	__u64 pc = st->ip;
	if (pc == 0)
		return -1;
	push_frame(st, pc);
	__u64 at = st->return_addr ? pc - 1 : pc;
	struct mapping *m = find_mapping(p, at, &st->last_map);
	if (!m) {
		maybe_refresh(p, st->key.pid);
		count_lost(UNW_FP_NO_MAPPING);
		return frame_pointer_step(st);
	}
	if (m->file == 0)
		return frame_pointer_step(st);
	__u32 fid = m->file;
	__u64 bias = m->bias;
	struct file_info *f = bpf_map_lookup_elem(&unwind_files, &fid);
	if (!f)
		return frame_pointer_step(st);
	if (f->state == FILE_LOADING)
		return TRUNC_TABLE_NOT_LOADED;
	if (f->state != FILE_READY)
		return frame_pointer_step(st);
	struct rule *r = find_rule(f, at - bias);
	if (r)
		return rule_step(st, r, pc);
	if (is_sigreturn(pc))
		return signal_frame(st);
	count_lost(UNW_FP_NO_RULE);
	return frame_pointer_step(st);
}

#endif
