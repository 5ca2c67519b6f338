/* Each function under test calls capture(i): the return address it stores
   lies inside that function, so the test knows which name to expect. */
#include <stdio.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static void *slots[8];

static NOINLINE void capture(int i) {
	slots[i] = __builtin_return_address(0);
	__asm__ volatile("" ::: "memory");
}

/* report prints the slots and waits for stdin to close, so the test can
   symbolize a live process and then decide when it ends. */
static void report(int n) {
	for (int i = 0; i < n; i++)
		printf("%d %p\n", i, slots[i]);
	printf("ready\n");
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0)
		;
}
