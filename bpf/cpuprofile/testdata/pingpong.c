// vigil-cflags: -O2 -pthread -fasynchronous-unwind-tables
// Two threads pass one byte back and forth over two pipes argv[1] times
// (default 100000), so each blocks in read() once per round trip, and
// prints the mean round-trip time in nanoseconds. With a second argument
// it first waits for one byte on stdin. With a third, "mixed", the echoing
// thread waits for each byte in turn in read, poll, select, ppoll,
// pselect and epoll_wait: six stacks, more than a thread's cache
// of them holds.
#define _GNU_SOURCE
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int ping[2], pong[2];
static long rounds = 100000;
static int mixed, ep;

// wait_in waits until ping[0] is readable, the way round i says.
__attribute__((noipa)) static void wait_in(long i)
{
	int fd = ping[0];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	fd_set set;
	FD_ZERO(&set);
	FD_SET(fd, &set);
	struct epoll_event ev;
	switch (i % 6) {
	case 1:
		poll(&p, 1, -1);
		break;
	case 2:
		select(fd + 1, &set, NULL, NULL, NULL);
		break;
	case 3:
		ppoll(&p, 1, NULL, NULL);
		break;
	case 4:
		pselect(fd + 1, &set, NULL, NULL, NULL, NULL);
		break;
	case 5:
		epoll_wait(ep, &ev, 1, -1);
		break;
	}
}

__attribute__((noipa)) static void *echo(void *arg)
{
	char c;
	for (long i = 0; i < rounds; i++) {
		if (mixed)
			wait_in(i);
		if (read(ping[0], &c, 1) != 1 || write(pong[1], &c, 1) != 1)
			exit(1);
	}
	return arg;
}

__attribute__((noipa)) static void serve(void)
{
	char c = 'x';
	for (long i = 0; i < rounds; i++)
		if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1)
			exit(1);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		rounds = atol(argv[1]);
	char go;
	if (argc > 2 && read(0, &go, 1) != 1)
		return 1;
	mixed = argc > 3 && strcmp(argv[3], "mixed") == 0;
	pthread_t th;
	if (pipe(ping) || pipe(pong))
		return 1;
	struct epoll_event ev = {.events = EPOLLIN};
	if ((ep = epoll_create1(0)) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ping[0], &ev) != 0)
		return 1;
	if (pthread_create(&th, NULL, echo, NULL))
		return 1;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	serve();
	clock_gettime(CLOCK_MONOTONIC, &b);
	pthread_join(th, NULL);
	double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
	printf("%.1f\n", ns / rounds);
	return 0;
}
