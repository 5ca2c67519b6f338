// A call chain four deep below main, as a distribution builds it (-O2, so
// no frame pointers on x86-64). Each stage keeps a value across its call
// (or a buffer on its stack) so the frames differ in size and a walker has
// to read the unwind table of each one, not assume a fixed layout. The
// arithmetic after each call keeps gcc from turning it into a tail jump,
// which would drop the caller's frame from every stack.
#include <stdint.h>

volatile uint64_t sink;

__attribute__((noinline, noclone)) uint64_t leaf_work(uint64_t x)
{
	for (int i = 0; i < 200000; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		x ^= x >> 29;
	}
	return x;
}

__attribute__((noinline, noclone)) uint64_t stage_inner(uint64_t x)
{
	uint64_t r = leaf_work(x);
	__asm__ volatile("" ::: "memory");
	return r + x * 3;
}

__attribute__((noinline, noclone)) uint64_t stage_middle(uint64_t x)
{
	volatile uint64_t scratch[8];
	scratch[x & 7] = x;
	uint64_t r = stage_inner(x + scratch[(x >> 3) & 7]);
	__asm__ volatile("" ::: "memory");
	return r ^ scratch[x & 7];
}

__attribute__((noinline, noclone)) uint64_t stage_outer(uint64_t x)
{
	uint64_t r = stage_middle(x);
	__asm__ volatile("" ::: "memory");
	return r + x;
}

int main(void)
{
	for (uint64_t i = 0;; i++)
		sink = stage_outer(i);
}
