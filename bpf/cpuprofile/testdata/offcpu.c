// vigil-cflags: -O2 -pthread -fasynchronous-unwind-tables
// Threads that block in named functions for known times, built as
// distributions build code (-O2, no frame pointers), each measuring the time
// it spends blocked itself. It waits for one byte on stdin, runs for argv[1]
// milliseconds (default 1500), then prints "<function> <blocked ns>" lines.
//
//   sleeper       nanosleep 5 ms in a loop
//   pipe_reader   read() on a pipe that pipe_writer answers every 3 ms
//   mutex_waiter  pthread_mutex_lock on a mutex mutex_holder keeps 4 ms
//   nap_a, nap_b  nanosleep 2 ms, called in turn by one thread from the
//                 same place: the same system call at the same stack
//                 depth, told apart only by their return addresses
//   spinner       never blocks
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;
static volatile uint64_t sink;
static uint64_t blocked_sleeper, blocked_pipe, blocked_mutex, blocked_nap_a, blocked_nap_b;
static int pipefd[2];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void sleep_ns(long ns)
{
	struct timespec ts = {0, ns};
	nanosleep(&ts, NULL);
}

__attribute__((noipa)) void sleeper(void)
{
	while (!stop) {
		uint64_t t0 = now_ns();
		sleep_ns(5000000);
		blocked_sleeper += now_ns() - t0;
	}
}

__attribute__((noipa)) void pipe_reader(void)
{
	char c = 0;
	while (c != 'q') {
		uint64_t t0 = now_ns();
		ssize_t n = read(pipefd[0], &c, 1);
		blocked_pipe += now_ns() - t0;
		if (n <= 0)
			break;
	}
}

__attribute__((noipa)) void pipe_writer(void)
{
	while (!stop) {
		sleep_ns(3000000);
		if (write(pipefd[1], "x", 1) != 1)
			break;
	}
	if (write(pipefd[1], "q", 1) != 1)
		abort();
}

__attribute__((noipa)) void mutex_holder(void)
{
	while (!stop) {
		pthread_mutex_lock(&mu);
		sleep_ns(4000000);
		pthread_mutex_unlock(&mu);
		sleep_ns(200000);
	}
}

// mutex_waiter measures one wait for the mutex; the pause between waits
// (so the holder takes it again) is in waiter_pause, not here.
__attribute__((noipa)) void mutex_waiter(void)
{
	uint64_t t0 = now_ns();
	pthread_mutex_lock(&mu);
	blocked_mutex += now_ns() - t0;
	pthread_mutex_unlock(&mu);
	sink++;
}

__attribute__((noipa)) void waiter_pause(void)
{
	sleep_ns(1000000);
	sink++;
}

__attribute__((noipa)) void nap_a(void)
{
	uint64_t t0 = now_ns();
	sleep_ns(2000000);
	blocked_nap_a += now_ns() - t0;
}

__attribute__((noipa)) void nap_b(void)
{
	uint64_t t0 = now_ns();
	sleep_ns(2000000);
	blocked_nap_b += now_ns() - t0;
}

// spinner runs at SCHED_IDLE: on a single CPU it would otherwise preempt
// the other threads inside their measured waits, time they count as
// blocked and the kernel as run-queue delay.
__attribute__((noipa)) void spinner(void)
{
	struct sched_param sp = {0};
	sched_setscheduler(0, SCHED_IDLE, &sp);
	while (!stop)
		sink++;
}

static void *run_sleeper(void *a) { sleeper(); return a; }
static void *run_pipe_reader(void *a) { pipe_reader(); return a; }
static void *run_pipe_writer(void *a) { pipe_writer(); return a; }
static void *run_mutex_holder(void *a) { mutex_holder(); return a; }
static void *run_spinner(void *a) { spinner(); return a; }

static void *run_napper(void *a)
{
	for (long i = 0; !stop; i++) {
		if (i & 1)
			nap_b();
		else
			nap_a();
	}
	return a;
}

static void *run_mutex_waiter(void *a)
{
	while (!stop) {
		mutex_waiter();
		waiter_pause();
	}
	return a;
}

int main(int argc, char **argv)
{
	long ms = argc > 1 ? atol(argv[1]) : 1500;
	char go;
	if (pipe(pipefd) != 0 || read(0, &go, 1) != 1)
		return 1;
	void *(*fns[])(void *) = {run_sleeper, run_pipe_reader, run_pipe_writer,
				  run_mutex_holder, run_mutex_waiter, run_napper, run_spinner};
	pthread_t th[7];
	for (int i = 0; i < 7; i++)
		if (pthread_create(&th[i], NULL, fns[i], NULL) != 0)
			return 1;
	sleep_ns(0);
	struct timespec d = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&d, NULL);
	stop = 1;
	for (int i = 0; i < 7; i++)
		pthread_join(th[i], NULL);
	printf("sleeper %llu\npipe_reader %llu\nmutex_waiter %llu\nnap_a %llu\nnap_b %llu\n",
	       (unsigned long long)blocked_sleeper, (unsigned long long)blocked_pipe, (unsigned long long)blocked_mutex,
	       (unsigned long long)blocked_nap_a, (unsigned long long)blocked_nap_b);
	return 0;
}
