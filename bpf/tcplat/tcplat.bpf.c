//go:build ignore

// TCP latency: active-open connect latency and smoothed RTT as OTel
// exponential histograms (see hist.bpf.h), and retransmitted segments as a
// counter. Go tries, per hook, these strategies in order:
//
//   connect     fentry tcp_v4_connect, tcp_v6_connect, tcp_rcv_state_process
//               kprobe on the same functions
//               tracepoint sock:inet_sock_set_state
//   rtt         fentry tcp_rcv_established
//               kprobe tcp_rcv_established
//               tracepoint tcp:tcp_probe
//   retransmit  tracepoint tcp:tcp_retransmit_skb
//
// A connect is timed from the start of the connect call (function hooks) or
// the move to SYN_SENT (tracepoint) to the SYN-ACK that establishes it. A
// connect that is refused, reset or closed first is not a latency: its start
// is dropped and it is counted as failed. The start time is keyed by the
// socket's address in a bounded LRU hash, so connects that never finish
// (timeouts, SYN floods of our own) age out instead of filling it.
//
// All programs return 0: a tracepoint program returning 1 would also make the
// kernel emit a perf event for it.

#include "hist.bpf.h"

#define BPF_MAP_TYPE_LRU_HASH 9

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

/* enum tcp_state (include/net/tcp_states.h), stable ABI of the tracepoints */
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2

/* TCP header flag bits (byte 13 of the header) */
#define TCPHDR_SYN 0x02
#define TCPHDR_RST 0x04
#define TCPHDR_ACK 0x10

/* Series of tcp_hists. */
#define HIST_CONNECT 0
#define HIST_RTT 1

/* Slots of tcp_counters. */
#define CNT_RETRANSMIT 0
#define CNT_CONNECT_UNTRACKED 1 /* established, start not seen (before attach, or evicted) */
#define CNT_CONNECT_FAILED 2    /* closed, refused or reset before established */
#define CNT_MAX 3

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct hist_value);
} tcp_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tcp_counters SEC(".maps");

/* Socket address -> connect start (ns). Each connect strategy has its own
 * copy, created and freed with the strategy. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} connect_start SEC(".maps");

/* Only connections with this local or remote port when non-zero (host
 * order); set from Go before load. */
const volatile __u16 filter_port = 0;

/* Offsets in the tcp:tcp_probe record, read from its format file by Go:
 * the record gained fields (mark, family, socket addresses) over the years. */
const volatile __u32 probe_family_off = 0;
const volatile __u32 probe_sport_off = 0;
const volatile __u32 probe_dport_off = 0;
const volatile __u32 probe_srtt_off = 0;

/* Same for tcp:tcp_retransmit_skb, read only when filter_port is set. */
const volatile __u32 retrans_sport_off = 0;
const volatile __u32 retrans_dport_off = 0;

/* CO-RE views of the kernel structs, only the fields read here. */
struct sock_common {
	unsigned short skc_family;
	volatile unsigned char skc_state;
	__be16 skc_dport;
	__u16 skc_num;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct tcp_sock {
	__u32 srtt_us; /* smoothed RTT in µs, shifted left by 3 */
} __attribute__((preserve_access_index));

struct sk_buff {
	unsigned char *head;
	__u16 transport_header;
} __attribute__((preserve_access_index));

/* Kprobe arguments without compiling per architecture: each flavor below
 * exists in only one architecture's BTF, and the loader drops the branch
 * of the other. */
struct pt_regs___x86 {
	unsigned long di;
	unsigned long si;
} __attribute__((preserve_access_index));

struct pt_regs___arm64 {
	__u64 regs[31];
} __attribute__((preserve_access_index));

static __always_inline __u64 kprobe_arg(void *ctx, int n)
{
	/* Copied rather than loaded: a CO-RE field offset becomes pointer
	 * arithmetic on ctx, which the verifier refuses for direct loads. */
	if (bpf_core_field_exists(struct pt_regs___x86, di))
		return n == 0 ? BPF_CORE_READ((struct pt_regs___x86 *)ctx, di)
			      : BPF_CORE_READ((struct pt_regs___x86 *)ctx, si);
	if (bpf_core_field_exists(struct pt_regs___arm64, regs))
		return n == 0 ? BPF_CORE_READ((struct pt_regs___arm64 *)ctx, regs[0])
			      : BPF_CORE_READ((struct pt_regs___arm64 *)ctx, regs[1]);
	return 0;
}

/* Record of sock:inet_sock_set_state. Its layout has not changed since the
 * protocol field was added (4.16); Go checks it against the format file. */
struct inet_sock_set_state_args {
	__u64 common;
	const void *skaddr;
	int oldstate;
	int newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
};

static __always_inline __u16 swap16(__u16 v)
{
	return __builtin_bswap16(v);
}

static __always_inline bool port_wanted(__u16 sport, __u16 dport)
{
	__u16 p = filter_port;

	return p == 0 || sport == p || dport == p;
}

static __always_inline void count(__u32 slot, bool sync)
{
	__u64 *c = bpf_map_lookup_elem(&tcp_counters, &slot);

	if (!c)
		return;
	if (sync)
		__sync_fetch_and_add(c, 1);
	else
		*c += 1;
}

static __always_inline void record(__u32 series, __u64 ns, bool sync)
{
	struct hist_value *h = bpf_map_lookup_elem(&tcp_hists, &series);

	if (!h)
		return;
	if (sync)
		hist_add_sync(h, ns);
	else
		hist_add(h, ns);
}

static __always_inline void connect_begin(__u64 sk)
{
	__u64 ts = bpf_ktime_get_ns();

	if (sk)
		bpf_map_update_elem(&connect_start, &sk, &ts, BPF_ANY);
}

/* connect_end finishes the connect of sk: timed when established, counted
 * as failed otherwise, and as untracked when its start was not seen. */
static __always_inline void connect_end(__u64 sk, bool established, __u16 sport, __u16 dport, bool sync)
{
	__u64 *start, delta;

	start = bpf_map_lookup_elem(&connect_start, &sk);
	if (!start) {
		if (established && port_wanted(sport, dport))
			count(CNT_CONNECT_UNTRACKED, sync);
		return;
	}
	delta = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&connect_start, &sk);
	if (!port_wanted(sport, dport))
		return;
	if (established)
		record(HIST_CONNECT, delta, sync);
	else
		count(CNT_CONNECT_FAILED, sync);
}

/* A segment reaching tcp_rcv_state_process of a SYN_SENT socket is the
 * answer to its SYN: SYN-ACK establishes it, RST refuses it, anything else
 * (a bare SYN of a simultaneous open) leaves it pending. */
static __always_inline void state_process(struct sock *sk, struct sk_buff *skb, bool sync)
{
	unsigned char *head;
	__u16 th, sport, dport;
	__u8 flags = 0;

	if (BPF_CORE_READ(sk, __sk_common.skc_state) != TCP_SYN_SENT)
		return;
	head = BPF_CORE_READ(skb, head);
	th = BPF_CORE_READ(skb, transport_header);
	bpf_probe_read_kernel(&flags, sizeof(flags), head + th + 13);
	sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	dport = swap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (flags & TCPHDR_RST)
		connect_end((__u64)sk, false, sport, dport, sync);
	else if ((flags & (TCPHDR_SYN | TCPHDR_ACK)) == (TCPHDR_SYN | TCPHDR_ACK))
		connect_end((__u64)sk, true, sport, dport, sync);
}

static __always_inline void rcv_established(struct sock *sk, bool sync)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u32 srtt;

	if (family != AF_INET && family != AF_INET6)
		return;
	if (!port_wanted(BPF_CORE_READ(sk, __sk_common.skc_num),
			 swap16(BPF_CORE_READ(sk, __sk_common.skc_dport))))
		return;
	srtt = BPF_CORE_READ((struct tcp_sock *)sk, srtt_us) >> 3;
	if (srtt)
		record(HIST_RTT, (__u64)srtt * 1000, sync);
}

/* fentry programs may be preempted by another run on the same CPU: sync. */

SEC("fentry/tcp_v4_connect")
int BPF_PROG(connect_v4_fentry, struct sock *sk)
{
	connect_begin((__u64)sk);
	return 0;
}

SEC("fentry/tcp_v6_connect")
int BPF_PROG(connect_v6_fentry, struct sock *sk)
{
	connect_begin((__u64)sk);
	return 0;
}

SEC("fentry/tcp_rcv_state_process")
int BPF_PROG(state_process_fentry, struct sock *sk, struct sk_buff *skb)
{
	state_process(sk, skb, true);
	return 0;
}

SEC("kprobe/tcp_v4_connect")
int connect_v4_kprobe(void *ctx)
{
	connect_begin(kprobe_arg(ctx, 0));
	return 0;
}

SEC("kprobe/tcp_v6_connect")
int connect_v6_kprobe(void *ctx)
{
	connect_begin(kprobe_arg(ctx, 0));
	return 0;
}

SEC("kprobe/tcp_rcv_state_process")
int state_process_kprobe(void *ctx)
{
	state_process((struct sock *)kprobe_arg(ctx, 0), (struct sk_buff *)kprobe_arg(ctx, 1), false);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int set_state_tp(struct inet_sock_set_state_args *a)
{
	if (a->protocol != IPPROTO_TCP || (a->family != AF_INET && a->family != AF_INET6))
		return 0;
	if (a->newstate == TCP_SYN_SENT) {
		connect_begin((__u64)a->skaddr);
		return 0;
	}
	if (a->oldstate == TCP_SYN_SENT)
		connect_end((__u64)a->skaddr, a->newstate == TCP_ESTABLISHED, a->sport, a->dport, false);
	return 0;
}

SEC("fentry/tcp_rcv_established")
int BPF_PROG(rtt_fentry, struct sock *sk)
{
	rcv_established(sk, true);
	return 0;
}

SEC("kprobe/tcp_rcv_established")
int rtt_kprobe(void *ctx)
{
	rcv_established((struct sock *)kprobe_arg(ctx, 0), false);
	return 0;
}

static __always_inline __u32 tp_u16(void *ctx, __u32 off)
{
	__u16 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (char *)ctx + off);
	return v;
}

/* tcp_probe's srtt is already srtt_us >> 3, in µs. */
SEC("tracepoint/tcp/tcp_probe")
int rtt_tp(void *ctx)
{
	__u32 family, srtt = 0;

	/* Records from before family was added (0: not in the format) come
	 * from TCP sockets only, which are IPv4 or IPv6 anyway. */
	if (probe_family_off) {
		family = tp_u16(ctx, probe_family_off);
		if (family != AF_INET && family != AF_INET6)
			return 0;
	}
	if (filter_port && !port_wanted(tp_u16(ctx, probe_sport_off), tp_u16(ctx, probe_dport_off)))
		return 0;
	bpf_probe_read_kernel(&srtt, sizeof(srtt), (char *)ctx + probe_srtt_off);
	if (srtt)
		record(HIST_RTT, (__u64)srtt * 1000, false);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int retransmit_tp(void *ctx)
{
	if (filter_port && !port_wanted(tp_u16(ctx, retrans_sport_off), tp_u16(ctx, retrans_dport_off)))
		return 0;
	count(CNT_RETRANSMIT, false);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
