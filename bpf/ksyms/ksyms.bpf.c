//go:build ignore

/* Names kernel addresses on demand, without /proc/kallsyms. Nothing is
 * attached: user space fills addrs[] and count, runs name_addrs with
 * BPF_PROG_RUN, and reads names[]: bpf_snprintf's "%pS" is the kernel's
 * own symbol lookup ("name+0xoff/0xsize [module]", or the bare "0x..."
 * address when no symbol covers it). text_bounds, run once, finds the
 * kernel image's text so that user space can tell it from BPF programs,
 * which "%pS" names without a module too.
 */
#include "common.bpf.h"

#define KSYMS_BATCH 64
#define KSYMS_NAME 192

/* Set by user space before each run: how many addresses and which. */
__u32 count;
__u64 addrs[KSYMS_BATCH];

/* Written by each run: the formatted symbol and bpf_snprintf's result
 * (the length the whole text needed with its NUL, or a negative error). */
char names[KSYMS_BATCH][KSYMS_NAME];
__s64 lens[KSYMS_BATCH];

/* Written by text_bounds: the kernel image's text, its init text (which
 * follows it) included: [_stext, max(_etext, _einittext)). */
__u64 text_start;
__u64 text_end;

static const char stext[] = "_stext";
static const char etext[] = "_etext";
static const char einittext[] = "_einittext";

SEC("syscall")
int name_addrs(void *ctx)
{
	for (__u32 i = 0; i < KSYMS_BATCH; i++) {
		if (i >= count)
			break;
		__u64 a = addrs[i];
		lens[i] = bpf_snprintf(names[i], KSYMS_NAME, "%pS", &a, sizeof(a));
	}
	return 0;
}

SEC("syscall")
int text_bounds(void *ctx)
{
	__u64 v = 0;
	if (bpf_kallsyms_lookup_name(stext, sizeof(stext), 0, &v) == 0)
		text_start = v;
	v = 0;
	if (bpf_kallsyms_lookup_name(etext, sizeof(etext), 0, &v) == 0)
		text_end = v;
	v = 0;
	if (bpf_kallsyms_lookup_name(einittext, sizeof(einittext), 0, &v) == 0 && v > text_end)
		text_end = v;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
