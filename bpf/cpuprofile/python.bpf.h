/* Python frames (CPython 3.9 to 3.13, x86-64).
 *
 * When the native walk of a sample in a CPython process ends, walk_python
 * finds the thread's PyThreadState and follows its frame list, recording
 * per frame the code object's address, a checksum of fields that identify
 * it, and the byte offset of the instruction being executed. User space
 * names the code objects from process memory and puts the Python frames
 * where the native walk passed through the eval loop.
 *
 *   py_procs[pid]    -> the interpreter's offsets and where its thread list is
 *   py_threads[tid]  -> that thread's PyThreadState (a cache; checked per use)
 *   pystacks_a/b     -> Python stacks by hash, like ustacks_a/b
 *
 * Everything read here is another process's memory: every value is used as
 * an address to read again (bpf_probe_read_user fails safely), never as an
 * index without a mask, and every loop is bounded.
 */
#ifndef VIGIL_PYTHON_BPF_H
#define VIGIL_PYTHON_BPF_H

#define MAX_PY_FRAMES 96
#define PY_FRAMES_PER_CALL 16
#define MAX_PY_THREADS 64 /* thread states looked at to find a thread's own */
/* How long a thread found without a thread state is taken to have none:
 * short, as a process that lives 300 ms must not lose its first second. */
#define PY_RECHECK_NS 20000000ULL
#define PY_WINDOW 256     /* most bytes read of a frame or a code object */
#define PY_NO_OFFSET 0xffff
/* From 3.11 a thread's frames are pushed one after the other on its data
 * stack, the caller below the callee: the walker copies from the start of
 * a frame's page up to its end, which serves the frames below it in that
 * page too, where reading each frame on its own costs a user-memory access
 * (hundreds of ns) per frame. */
#define PY_PAGE 4096
#define PY_CHUNK_MASK 8191 /* past PY_PAGE + PY_WINDOW, a power of two */

/* symbolizer/python's FrameKind. */
enum py_kind {
	PY_FRAME_OBJECT_39 = 1,
	PY_FRAME_OBJECT_310,
	PY_INTERP_311,
	PY_INTERP_312,
	PY_INTERP_313,
};

/* A frame's offset word: the byte offset of its instruction in the low 31
 * bits (PY_UNKNOWN_OFFSET when it can't be told), and PY_ENTRY when the
 * frame is the first one its eval-loop call ran: the native walk has one
 * _PyEval_EvalFrameDefault frame per such group. */
#define PY_ENTRY 0x80000000U
#define PY_UNKNOWN_OFFSET 0x7fffffffU

/* Frames whose code address is below 4096 are markers. */
#define PY_MARK_UNREADABLE 1 /* the frame itself could not be read */
#define PY_MARK_DEPTH 2      /* more frames than MAX_PY_FRAMES */
#define PY_MARK_NOT_CODE 3   /* the frame's code is not a code object */

struct py_proc {
	__u64 interp_head; /* address of _PyRuntime.interpreters.head */
	__u64 code_type;   /* address of PyCode_Type; 0: not checked */
	__u16 kind;
	__u16 interp_threads_head;
	__u16 tstate_next;
	__u16 tstate_thread_id;
	__u16 tstate_frame;
	__u16 cframe_current_frame;
	__u16 frame_previous;
	__u16 frame_code;
	__u16 frame_instr;
	__u16 frame_owner;
	__u16 code_adaptive;
	__u16 code_name;
	__u16 code_filename;
	__u16 code_firstlineno;
	__u16 code_linetable;
	__u8 owned_by_cstack;
	__u8 pad;
	__u16 frame_size; /* bytes of a frame to read: past its last field read */
	__u16 code_size;  /* same for a code object */
	__u32 pad2;
};

struct py_frame {
	__u64 code;
	__u32 offset; /* PY_ENTRY | byte offset */
	__u32 check;
};

struct pystack {
	__u32 len;
	__u32 pid; /* code addresses mean something in one process only */
	struct py_frame frames[MAX_PY_FRAMES];
};

struct py_thread {
	__u64 tstate; /* 0: the thread has none (checked at checked_ns) */
	__u64 checked_ns;
};

struct py_state {
	__u64 frame; /* next frame to read; 0 at the end */
	__u64 hash;
	__u32 started;
	__u32 chunk_len; /* bytes of chunk copied from chunk_base */
	__u64 chunk_base;
	struct pystack stack;
	__u8 buf[PY_WINDOW + 8];
	__u8 chunk[PY_CHUNK_MASK + 1 + 8];
};

struct thread_struct {
	unsigned long fsbase;
} __attribute__((preserve_access_index));

struct task_struct___py {
	struct thread_struct thread;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct py_proc);
} py_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct py_thread);
} py_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct pystack);
} pystacks_a SEC(".maps"), pystacks_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MODES); /* one slot per enum walk_mode */
	__type(key, __u32);
	__type(value, struct py_state);
} py_scratch SEC(".maps");

static __always_inline __u64 read_ptr(__u64 addr)
{
	__u64 v = 0;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

/* field reads a little-endian value of size bytes at off in the window;
 * PY_NO_OFFSET and offsets past the window read as 0. */
static __always_inline __u64 field64(struct py_state *ps, __u16 off)
{
	if (off > PY_WINDOW - 8)
		return 0;
	return *(__u64 *)(ps->buf + (off & (PY_WINDOW - 1)));
}

static __always_inline __u32 field32(struct py_state *ps, __u16 off)
{
	if (off > PY_WINDOW - 4)
		return 0;
	return *(__u32 *)(ps->buf + (off & (PY_WINDOW - 1)));
}


static __always_inline bool read_window(struct py_state *ps, __u64 addr, __u16 size)
{
	__u32 n = size;
	if (n == 0 || n > PY_WINDOW)
		n = PY_WINDOW;
	return bpf_probe_read_user(ps->buf, n, (void *)addr) == 0;
}

/* read_frame brings a frame's first size bytes into ps->chunk and returns
 * their offset there, or -1. From 3.11 it copies from the start of the
 * frame's page, so the frames below it in the page need no read; a frame
 * before 3.11 is a heap object of its own, read alone. */
static __always_inline long read_frame(struct py_proc *pp, struct py_state *ps, __u64 frame)
{
	__u32 n = pp->frame_size;
	if (n == 0 || n > PY_WINDOW)
		n = PY_WINDOW;
	if (frame >= ps->chunk_base && frame + n <= ps->chunk_base + ps->chunk_len)
		return (long)(frame - ps->chunk_base);
	__u64 start = frame;
	if (pp->kind >= PY_INTERP_311)
		start = frame & ~(__u64)(PY_PAGE - 1);
	__u32 len = (__u32)(frame - start) + n;
	if (len > PY_PAGE + PY_WINDOW)
		return -1;
	// The masks restate the bounds for the verifier; hidden from the
	// compiler, which knows them already and would drop them.
	__u64 rlen = len, rn = n;
	HIDE(rlen);
	HIDE(rn);
	if (bpf_probe_read_user(ps->chunk, rlen & PY_CHUNK_MASK, (void *)start) != 0) {
		// The page may end the mapping and the frame cross it: read
		// just the frame.
		ps->chunk_len = 0;
		if (bpf_probe_read_user(ps->chunk, rn & (2 * PY_WINDOW - 1), (void *)frame) != 0)
			return -1;
		start = frame;
		len = n;
	}
	ps->chunk_base = start;
	ps->chunk_len = len;
	return (long)(frame - start);
}

static __always_inline __u64 chunk64(struct py_state *ps, long at, __u16 off)
{
	if (off > PY_WINDOW - 8)
		return 0;
	return *(__u64 *)(ps->chunk + ((at + off) & PY_CHUNK_MASK));
}

static __always_inline __u32 chunk32(struct py_state *ps, long at, __u16 off)
{
	if (off > PY_WINDOW - 4)
		return 0;
	return *(__u32 *)(ps->chunk + ((at + off) & PY_CHUNK_MASK));
}

static __always_inline __u8 chunk8(struct py_state *ps, long at, __u16 off)
{
	if (off > PY_WINDOW - 1)
		return 0;
	return ps->chunk[(at + off) & PY_CHUNK_MASK];
}

/* find_tstate returns the calling thread's PyThreadState, or 0. Each
 * thread state records pthread_self() of its thread, which on x86-64 is
 * the thread's FS base; the answer is cached per thread and checked at
 * each use, so a thread state freed and reused is not followed. */
static __always_inline __u64 find_tstate(struct py_proc *pp, __u32 tid)
{
	struct task_struct___py *task = (void *)bpf_get_current_task();
	__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (fsbase == 0)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	struct py_thread *t = bpf_map_lookup_elem(&py_threads, &tid);
	if (t) {
		if (t->tstate && read_ptr(t->tstate + pp->tstate_thread_id) == fsbase)
			return t->tstate;
		// A thread without a thread state (not started by Python, or
		// not attached yet: a new thread, an interpreter starting up) is
		// looked for again after PY_RECHECK_NS.
		if (!t->tstate && now - t->checked_ns < PY_RECHECK_NS)
			return 0;
	}
	__u64 interp = read_ptr(pp->interp_head);
	__u64 ts = interp ? read_ptr(interp + pp->interp_threads_head) : 0;
	__u64 found = 0;
#pragma clang loop unroll(disable)
	for (int i = 0; i < MAX_PY_THREADS && ts; i++) {
		if (read_ptr(ts + pp->tstate_thread_id) == fsbase) {
			found = ts;
			break;
		}
		ts = read_ptr(ts + pp->tstate_next);
	}
	struct py_thread v = {.tstate = found, .checked_ns = now};
	bpf_map_update_elem(&py_threads, &tid, &v, BPF_ANY);
	return found;
}

/* first_frame returns the thread's innermost Python frame, or 0. */
static __always_inline __u64 first_frame(struct py_proc *pp, __u64 tstate)
{
	__u64 f = read_ptr(tstate + pp->tstate_frame);
	if (f && pp->cframe_current_frame != PY_NO_OFFSET)
		f = read_ptr(f + pp->cframe_current_frame); // 3.11/3.12: through _PyCFrame
	return f;
}

static __always_inline void push_py(struct py_state *ps, __u64 code, __u32 offset, __u32 check)
{
	__u32 d = ps->stack.len;
	if (d >= MAX_PY_FRAMES)
		return;
	struct py_frame *f = &ps->stack.frames[d % MAX_PY_FRAMES];
	f->code = code;
	f->offset = offset;
	f->check = check;
	ps->stack.len = d + 1;
	ps->hash = (ps->hash ^ code) * 0x100000001b3ULL;
	ps->hash = (ps->hash ^ (((__u64)check << 32) | offset)) * 0x100000001b3ULL;
}

/* instr_offset turns a frame's instruction field into a byte offset in
 * its code. */
static __always_inline __u32 instr_offset(struct py_proc *pp, struct py_state *ps, long at, __u64 code)
{
	if (pp->kind == PY_FRAME_OBJECT_39 || pp->kind == PY_FRAME_OBJECT_310) {
		__s32 lasti = (__s32)chunk32(ps, at, pp->frame_instr);
		if (lasti < 0)
			return PY_UNKNOWN_OFFSET;
		if (pp->kind == PY_FRAME_OBJECT_310)
			lasti *= 2; // counted in 2-byte code units
		return (__u32)lasti & PY_UNKNOWN_OFFSET;
	}
	__u64 instr = chunk64(ps, at, pp->frame_instr);
	__u64 first = code + pp->code_adaptive;
	if (instr < first || instr - first >= PY_UNKNOWN_OFFSET)
		return PY_UNKNOWN_OFFSET; // a frame that has not started yet
	return (__u32)(instr - first);
}

/* py_step records the frame at ps->frame and moves to its caller. It
 * returns 0 to go on, 1 at the end. */
static __always_inline int py_step(struct py_proc *pp, struct py_state *ps)
{
	__u64 frame = ps->frame;
	if (!frame)
		return 1;
	long at = read_frame(pp, ps, frame);
	if (at < 0) {
		push_py(ps, PY_MARK_UNREADABLE, PY_UNKNOWN_OFFSET, 0);
		return 1;
	}
	__u64 code = chunk64(ps, at, pp->frame_code);
	ps->frame = chunk64(ps, at, pp->frame_previous);
	__u8 owner = chunk8(ps, at, pp->frame_owner);
	if (pp->kind >= PY_INTERP_312 && owner == pp->owned_by_cstack) {
		// The shim an eval-loop call pushes below its first frame: the
		// frame recorded before it was that call's first.
		__u32 d = ps->stack.len;
		if (d > 0 && d <= MAX_PY_FRAMES)
			ps->stack.frames[(d - 1) % MAX_PY_FRAMES].offset |= PY_ENTRY;
		return 0;
	}
	__u32 offset = instr_offset(pp, ps, at, code);
	if (pp->kind <= PY_FRAME_OBJECT_310 || (pp->kind == PY_INTERP_311 && owner))
		offset |= PY_ENTRY;
	__u32 check = 0;
	if (read_window(ps, code, pp->code_size)) {
		// ob_type, right after the reference count.
		if (pp->code_type && field64(ps, 8) != pp->code_type) {
			push_py(ps, PY_MARK_NOT_CODE, PY_UNKNOWN_OFFSET, 0);
			return 0;
		}
		__u64 h = 0xcbf29ce484222325ULL;
		h = (h ^ field64(ps, pp->code_name)) * 0x100000001b3ULL;
		h = (h ^ field64(ps, pp->code_filename)) * 0x100000001b3ULL;
		h = (h ^ field64(ps, pp->code_linetable)) * 0x100000001b3ULL;
		h = (h ^ (__u64)field32(ps, pp->code_firstlineno)) * 0x100000001b3ULL;
		check = (__u32)(h ^ (h >> 32));
	}
	push_py(ps, code, offset, check);
	return 0;
}

#endif
