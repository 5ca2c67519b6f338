// The library call_plugin dlopens after the profilers have started: its
// mapping and unwind table appear only then. lib_inner is a frameless leaf.
#include <stdint.h>

__attribute__((noinline, noclone)) uint64_t lib_inner(uint64_t x)
{
	for (int i = 0; i < 200000; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		x ^= x >> 25;
	}
	return x;
}

__attribute__((noinline, noclone)) uint64_t lib_outer(uint64_t x)
{
	volatile uint64_t scratch[4];
	scratch[x & 3] = x;
	uint64_t r = lib_inner(x);
	__asm__ volatile("" ::: "memory");
	return r ^ scratch[x & 3];
}
