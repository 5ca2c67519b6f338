// vigil-cflags: -O2 -pthread -fasynchronous-unwind-tables
// Two threads pass one byte back and forth over two pipes argv[1] times
// (default 100000), so each blocks in read() once per round trip, and
// prints the mean round-trip time in nanoseconds. With a second argument
// it first waits for one byte on stdin.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int ping[2], pong[2];
static long rounds = 100000;

__attribute__((noipa)) static void *echo(void *arg)
{
	char c;
	for (long i = 0; i < rounds; i++)
		if (read(ping[0], &c, 1) != 1 || write(pong[1], &c, 1) != 1)
			exit(1);
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
	pthread_t th;
	if (pipe(ping) || pipe(pong) || pthread_create(&th, NULL, echo, NULL))
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
