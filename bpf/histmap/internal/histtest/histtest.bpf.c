//go:build ignore

// Test-only program: feeds values chosen by a Go test through hist.bpf.h
// with BPF_PROG_TEST_RUN, so the kernel's bucketing can be compared with
// hist.Layout.Bucket value by value.

#include "hist.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist_value);
} hist_test SEC(".maps");

/* ctx[0] is the value in ns. Returns the slot, plus 0x10000 when it
 * overflowed; 0x20000 for zero; -1 without a layout. The value is also
 * added to hist_test. */
SEC("raw_tp")
int feed(unsigned long long *ctx)
{
	__u64 ns = ctx[0];
	struct hist_value *h;
	__u32 key = 0;
	bool over;
	int slot;

	h = bpf_map_lookup_elem(&hist_test, &key);
	if (h)
		hist_add(h, ns);
	if (ns == 0)
		return 0x20000;
	slot = hist_slot(ns, &over);
	if (slot < 0)
		return -1;
	return slot | (over ? 0x10000 : 0);
}

/* feed_hash exercises hist_lookup's create path on a hash map and the
 * atomic variant. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct hist_value);
} hist_test_hash SEC(".maps");

SEC("raw_tp")
int feed_hash(unsigned long long *ctx)
{
	__u32 key = (__u32)ctx[1];
	struct hist_value *h = hist_lookup(&hist_test_hash, &key);

	if (!h)
		return -1;
	hist_add_sync(h, ctx[0]);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
