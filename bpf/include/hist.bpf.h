/* In-kernel latency histograms shared by every vigil latency program.
 *
 * Bucketing is OpenTelemetry's exponential histogram, exactly. Go computes
 * the bucket table at load time (bpf/hist.NewLayout) and writes it into
 * hist_bounds before the object is loaded: hist_bounds[j] is the largest
 * whole number of nanoseconds that belongs to OTel bucket MinIndex+j, the
 * table is ascending, and the unused tail is padded with ~0 so that a search
 * over all HIST_MAX_BUCKETS slots finds the same slot as a search over the
 * first hist_nbounds.
 *
 * A value v (ns) goes to:
 *   v == 0                       -> zero (OTel's zero bucket), not a slot;
 *   first j with hist_bounds[j] >= v, when j < hist_nbounds;
 *   otherwise (v above the last bound) the last slot, and overflow counts it.
 * count and sum_ns include every value. Because bounds are floor(1e9 * base^i)
 * and v is an integer, "v <= bound" is the same test as OTel's "v <= 1e9 *
 * base^i", so no value lands in a neighbouring bucket.
 *
 * The search is a fixed 9-step binary search (2^9 == HIST_MAX_BUCKETS) with
 * masked indexes: no data-dependent loop bound for the verifier to follow.
 *
 * Values live in per-CPU maps, so the plain increments of hist_add are exact
 * for hooks that run with preemption disabled (tracepoints, tp_btf, raw
 * tracepoints, kprobes). fentry/fexit programs run with only migration
 * disabled and may be preempted by another run of themselves on the same CPU;
 * they must use hist_add_sync.
 */
#ifndef VIGIL_HIST_BPF_H
#define VIGIL_HIST_BPF_H

#include "common.bpf.h"

/* Must equal hist.MaxBuckets in bpf/hist/hist.go (checked by Go tests). */
#define HIST_MAX_BUCKETS 512
#define HIST_SEARCH_STEPS 9

struct hist_value {
	__u64 buckets[HIST_MAX_BUCKETS];
	__u64 zero;     /* values of exactly 0 ns */
	__u64 count;    /* every value, zero and overflow included */
	__u64 sum_ns;   /* sum of every value */
	__u64 overflow; /* values above the last bound (also in the last slot) */
};

/* Set from Go before load (histmap.SetLayout). */
const volatile __u64 hist_bounds[HIST_MAX_BUCKETS] = {};
const volatile __u32 hist_nbounds = 0;

/* A zeroed value to create map entries from: a hist_value is far larger
 * than the 512-byte BPF stack. */
static const struct hist_value hist_zero_value = {};

/* hist_slot returns the slot of ns > 0 and sets *overflow when ns is above
 * the last bound. Returns -1 when no layout was loaded. */
static __always_inline int hist_slot(__u64 ns, bool *overflow)
{
	__u32 nb = hist_nbounds;
	__u32 lo = 0;

	*overflow = false;
	if (nb == 0 || nb > HIST_MAX_BUCKETS)
		return -1;
	/* lo ends as the number of bounds below ns (the table is sorted). */
#pragma unroll
	for (int step = HIST_MAX_BUCKETS / 2; step > 0; step /= 2) {
		if (hist_bounds[(lo + step - 1) & (HIST_MAX_BUCKETS - 1)] < ns)
			lo += step;
	}
	/* The search above never looks at slot 511: decide it here. */
	if (lo == HIST_MAX_BUCKETS - 1 && hist_bounds[HIST_MAX_BUCKETS - 1] < ns)
		lo = HIST_MAX_BUCKETS;
	if (lo >= nb) {
		*overflow = true;
		lo = nb - 1;
	}
	return lo & (HIST_MAX_BUCKETS - 1);
}

/* hist_add records ns in h; for hooks that run with preemption disabled. */
static __always_inline void hist_add(struct hist_value *h, __u64 ns)
{
	bool over;
	int slot;

	h->count++;
	h->sum_ns += ns;
	if (ns == 0) {
		h->zero++;
		return;
	}
	slot = hist_slot(ns, &over);
	if (slot < 0)
		return;
	h->buckets[slot & (HIST_MAX_BUCKETS - 1)]++;
	if (over)
		h->overflow++;
}

/* hist_add_sync is hist_add for hooks that may be preempted while running
 * (fentry/fexit): atomic adds keep concurrent runs on one CPU exact. */
static __always_inline void hist_add_sync(struct hist_value *h, __u64 ns)
{
	bool over;
	int slot;

	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
	if (ns == 0) {
		__sync_fetch_and_add(&h->zero, 1);
		return;
	}
	slot = hist_slot(ns, &over);
	if (slot < 0)
		return;
	__sync_fetch_and_add(&h->buckets[slot & (HIST_MAX_BUCKETS - 1)], 1);
	if (over)
		__sync_fetch_and_add(&h->overflow, 1);
}

/* hist_lookup returns the value for key in map, creating a zeroed entry when
 * the key is new. NULL means the map is full (a hash at max_entries): the
 * caller decides where such values go (e.g. an overflow series). */
static __always_inline struct hist_value *hist_lookup(void *map, const void *key)
{
	struct hist_value *h = bpf_map_lookup_elem(map, key);

	if (h)
		return h;
	bpf_map_update_elem(map, key, &hist_zero_value, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

#endif
