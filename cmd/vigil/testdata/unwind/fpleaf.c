// Built with -O2 -fno-omit-frame-pointer: work_loop and main keep a frame
// pointer, but gcc still gives the leaf none (-mno-omit-leaf-frame-pointer
// is not given), so while hot_leaf runs RBP still holds work_loop's frame
// and a frame-pointer walk goes from hot_leaf straight to main.
#include <stdint.h>

volatile uint64_t sink;

__attribute__((noinline, noclone)) uint64_t hot_leaf(uint64_t x)
{
	for (int i = 0; i < 200000; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		x ^= x >> 31;
	}
	return x;
}

__attribute__((noinline, noclone)) uint64_t work_loop(uint64_t x)
{
	uint64_t r = hot_leaf(x);
	__asm__ volatile("" ::: "memory");
	return r + x;
}

int main(void)
{
	for (uint64_t i = 0;; i++)
		sink = work_loop(i);
}
