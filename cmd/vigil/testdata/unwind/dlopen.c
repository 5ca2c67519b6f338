// Spins in wait_for_go until a file named "go" appears next to the
// executable (the test creates it once both profilers have been sampling
// for a while, so they see samples of wait_for_go first), then dlopens
// libhot.so from the same directory and calls its lib_outer forever from
// call_plugin: the library's mapping and unwind table appear only after the
// profilers started.
#include <dlfcn.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

volatile uint64_t sink;

__attribute__((noinline, noclone)) void wait_for_go(const char *path)
{
	while (access(path, F_OK) != 0)
		for (int i = 0; i < 1000000; i++)
			sink += i;
}

__attribute__((noinline, noclone)) void call_plugin(uint64_t (*fn)(uint64_t))
{
	for (uint64_t i = 0;; i++) {
		sink = fn(i);
		__asm__ volatile("" ::: "memory");
	}
}

int main(void)
{
	char exe[1024], path[1024 + 16];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n < 0)
		return 1;
	exe[n] = 0;
	const char *dir = dirname(exe);
	snprintf(path, sizeof path, "%s/go", dir);
	wait_for_go(path);
	snprintf(path, sizeof path, "%s/libhot.so", dir);
	void *h = dlopen(path, RTLD_NOW);
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	uint64_t (*fn)(uint64_t) = (uint64_t(*)(uint64_t))dlsym(h, "lib_outer");
	if (!fn)
		return 1;
	call_plugin(fn);
	return 0;
}
