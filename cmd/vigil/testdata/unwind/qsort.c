// libc's qsort calling back into the program: the comparator's caller is
// code in libc.so.6, so the walk has to cross into libc's unwind table and
// back out to sort_driver. The comparator does a small loop so most
// samples land in it, beneath qsort.
#include <stdint.h>
#include <stdlib.h>

#define N 512

volatile uint64_t sink;
static uint64_t keys[N];

__attribute__((noinline, noclone)) int cmp_callback(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	for (int i = 0; i < 64; i++) {
		x = x * 2862933555777941757ULL + 3037000493ULL;
		y = y * 2862933555777941757ULL + 3037000493ULL;
	}
	__asm__ volatile("" : "+r"(x), "+r"(y));
	return (x > y) - (x < y);
}

__attribute__((noinline, noclone)) void sort_driver(uint64_t seed)
{
	for (int i = 0; i < N; i++)
		keys[i] = seed ^ ((uint64_t)i * 0x9e3779b97f4a7c15ULL);
	qsort(keys, N, sizeof keys[0], cmp_callback);
	sink = keys[0];
}

int main(void)
{
	for (uint64_t i = 0;; i++)
		sort_driver(i);
}
