// vigil-cflags: -O2 -fomit-frame-pointer -fasynchronous-unwind-tables
// A chain four calls deep built as distributions build code: -O2, no frame
// pointers, so only the .eh_frame tables can walk it. Each stage does a
// little work after its call, which keeps it a real frame (no tail call).
#include <stdint.h>

volatile uint64_t sink;

__attribute__((noinline)) void leaf_work(uint64_t n) {
	uint64_t x = sink;
	for (uint64_t i = 0; i < n; i++) x = x * 2654435761u + i;
	sink = x;
}

__attribute__((noinline)) void stage_inner(uint64_t n) {
	leaf_work(n);
	sink += 1;
}

__attribute__((noinline)) void stage_middle(uint64_t n) {
	stage_inner(n);
	sink += 2;
}

__attribute__((noinline)) void stage_outer(uint64_t n) {
	stage_middle(n);
	sink += 3;
}

int main(void) {
	for (;;) stage_outer(1000000);
}
