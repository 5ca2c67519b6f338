/* What the scheduler tracepoints give, shared by the programs that read
 * sched_switch: a task's state across the 5.14 rename, and the classic
 * tracepoint's record. Include it after the program's own
 * struct task_struct, which must declare __state (CO-RE finds whichever
 * field the running kernel has).
 */
#ifndef VIGIL_SCHED_BPF_H
#define VIGIL_SCHED_BPF_H

/* Before 5.14 the field was "long state". */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline unsigned int task_state(struct task_struct *p)
{
	if (bpf_core_field_exists(p->__state))
		return BPF_CORE_READ(p, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)p, state);
}

/* The classic sched_switch tracepoint's record; stable since 4.x. */
struct sched_switch_rec {
	__u64 common;
	char prev_comm[TASK_COMM_LEN];
	int prev_pid;
	int prev_prio;
	long prev_state;
	char next_comm[TASK_COMM_LEN];
	int next_pid;
	int next_prio;
};

#endif
