//go:build ignore

// Block I/O latency: time from a request's issue to the driver until its
// completion, as OTel exponential histograms (see hist.bpf.h), one series
// per direction (read, write). Other operations (flush, discard, secure
// erase, write-zeroes, zone management) are not counted: they move no data,
// and their latency (a cache flush, a trim) would blur the read and write
// distributions; OTel's disk.io.direction knows only read and write.
//
// Go tries these strategies in order:
//   tp_btf block_rq_issue, block_rq_complete   the struct request itself
//   tracepoint block:block_rq_issue, block:block_rq_complete
//
// tp_btf keys the start time by the request's address and reads the
// operation from rq->cmd_flags. The classic tracepoints carry no request
// pointer, so they key by device and sector and read the operation from the
// rwbs string; their record layout is taken from the format files by Go.
// Start times live in bounded LRU hashes: a request whose completion is
// never seen (a driver that ends requests another way) ages out.
//
// All programs return 0: a tracepoint program returning 1 would also make the
// kernel emit a perf event for it.

#include "hist.bpf.h"

#define BPF_MAP_TYPE_LRU_HASH 9

/* enum req_op (include/linux/blk_types.h): the low 8 bits of cmd_flags. */
#define REQ_OP_MASK 0xff
#define REQ_OP_READ 0
#define REQ_OP_WRITE 1

/* Series of block_hists; DIR_NONE is not recorded. */
#define DIR_READ 0
#define DIR_WRITE 1
#define DIR_NONE 2

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct hist_value);
} block_hists SEC(".maps");

/* Request address -> issue time (ns), tp_btf strategy. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} rq_start SEC(".maps");

struct dev_sector {
	__u64 dev; /* kernel dev_t: major << 20 | minor */
	__u64 sector;
};

/* Device and sector -> issue time (ns), tracepoint strategy. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dev_sector);
	__type(value, __u64);
} sector_start SEC(".maps");

/* Only this disk (kernel dev_t of the whole disk) when non-zero; set from
 * Go before load. */
const volatile __u32 filter_dev = 0;

/* Offset of rwbs in the block_rq_issue and block_rq_complete records, read
 * from their format files by Go: it moved when ioprio was added (6.9), and
 * the two records differ from each other after dev and sector. */
const volatile __u32 issue_rwbs_off = 0;
const volatile __u32 complete_rwbs_off = 0;

/* The start of both records, the same in every kernel with these
 * tracepoints; Go checks it against the format files. Read in place, which
 * costs far less than copying each field out with a helper. */
struct block_rq_head {
	__u64 common;
	__u32 dev;
	__u32 pad;
	__u64 sector;
};

/* CO-RE views of the kernel structs, only the fields read here. */
struct gendisk {
	int major;
	int first_minor;
} __attribute__((preserve_access_index));

struct request_queue {
	struct gendisk *disk; /* since 5.15 */
} __attribute__((preserve_access_index));

struct request {
	struct request_queue *q;
	unsigned int cmd_flags;
} __attribute__((preserve_access_index));

/* Before 5.16 the disk hung off the request itself. */
struct request___old {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline __u32 rq_dev(struct request *rq)
{
	struct gendisk *disk;

	if (bpf_core_field_exists(struct request___old, rq_disk))
		disk = BPF_CORE_READ((struct request___old *)rq, rq_disk);
	else
		disk = BPF_CORE_READ(rq, q, disk);
	if (!disk)
		return 0;
	return ((__u32)BPF_CORE_READ(disk, major) << 20) | (__u32)BPF_CORE_READ(disk, first_minor);
}

static __always_inline void record(__u32 dir, __u64 ns)
{
	struct hist_value *h;

	if (dir >= DIR_NONE)
		return;
	h = bpf_map_lookup_elem(&block_hists, &dir);
	if (h)
		hist_add(h, ns);
}

/* tp_btf arguments are trusted kernel pointers: plain loads, no copies. */
static __always_inline __u32 rq_dir(struct request *rq)
{
	__u32 op = rq->cmd_flags & REQ_OP_MASK;

	return op == REQ_OP_READ ? DIR_READ : op == REQ_OP_WRITE ? DIR_WRITE : DIR_NONE;
}

static __always_inline void btf_issue(struct request *rq)
{
	__u64 key = (__u64)rq, ts;

	/* Not timing other operations keeps them out of the map too. */
	if (rq_dir(rq) == DIR_NONE)
		return;
	if (filter_dev && rq_dev(rq) != filter_dev)
		return;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&rq_start, &key, &ts, BPF_ANY);
}

/* Kernels from 5.11 pass only the request; older ones the queue first. */
SEC("tp_btf/block_rq_issue")
int BPF_PROG(issue_btf, struct request *rq)
{
	btf_issue(rq);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(issue_btf_q, void *q, struct request *rq)
{
	btf_issue(rq);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(complete_btf, struct request *rq)
{
	__u64 key = (__u64)rq, *start, delta;

	start = bpf_map_lookup_elem(&rq_start, &key);
	if (!start)
		return 0;
	delta = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&rq_start, &key);
	record(rq_dir(rq), delta);
	return 0;
}

/* rwbs starts with the operation: R read, W write, D discard, F flush,
 * N other; a leading F is a preflush in front of the operation. */
static __always_inline __u32 rwbs_dir(void *ctx, __u32 off)
{
	char rwbs[2] = {};
	char c;

	bpf_probe_read_kernel(rwbs, sizeof(rwbs), (char *)ctx + off);
	c = rwbs[0] == 'F' ? rwbs[1] : rwbs[0];
	return c == 'R' ? DIR_READ : c == 'W' ? DIR_WRITE : DIR_NONE;
}

SEC("tracepoint/block/block_rq_issue")
int issue_tp(struct block_rq_head *ctx)
{
	struct dev_sector k = {.dev = ctx->dev, .sector = ctx->sector};
	__u64 ts;

	if (filter_dev && k.dev != filter_dev)
		return 0;
	/* Not timing other operations keeps them out of the map too. */
	if (rwbs_dir(ctx, issue_rwbs_off) == DIR_NONE)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&sector_start, &k, &ts, BPF_ANY);
	return 0;
}

SEC("tracepoint/block/block_rq_complete")
int complete_tp(struct block_rq_head *ctx)
{
	struct dev_sector k = {.dev = ctx->dev, .sector = ctx->sector};
	__u64 *start, delta;

	start = bpf_map_lookup_elem(&sector_start, &k);
	if (!start)
		return 0;
	delta = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&sector_start, &k);
	record(rwbs_dir(ctx, complete_rwbs_off), delta);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
