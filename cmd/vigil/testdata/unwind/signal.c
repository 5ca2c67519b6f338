// The work happens in a signal handler: an interval timer interrupts
// interrupted_fn every 10 ms and handler_work spins for a few ms. Below the
// handler's frame is the kernel-made signal frame, entered through libc's
// __restore_rt; its unwind rule reads the interrupted registers from the
// saved context on the stack, and only then can the walk go on to
// interrupted_fn, sig_driver and main.
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>

volatile uint64_t sink;

__attribute__((noinline, noclone)) void handler_work(int sig)
{
	uint64_t x = (uint64_t)sig;
	for (int i = 0; i < 3000000; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		x ^= x >> 23;
	}
	sink = x;
}

// Never returns, so every signal interrupts it (and not sig_driver).
__attribute__((noinline, noclone)) void interrupted_fn(uint64_t x)
{
	for (;;) {
		x = x * 2862933555777941757ULL + 3037000493ULL;
		sink = x;
	}
}

__attribute__((noinline, noclone)) int sig_driver(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler_work;
	sigaction(SIGALRM, &sa, 0);
	struct itimerval it = {{0, 10000}, {0, 10000}};
	setitimer(ITIMER_REAL, &it, 0);
	interrupted_fn(1);
	return 1;
}

int main(void)
{
	return sig_driver() + 1;
}
