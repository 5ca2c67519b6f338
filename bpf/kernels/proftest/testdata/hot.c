// Two hot functions whose loops have the same body and run 3:1 iterations,
// so a sampling profiler must see them in a 3:1 ratio, both called from
// work() called from main(). Built -O0 with frame pointers.
#include <stdint.h>

volatile uint64_t acc;

__attribute__((noinline)) void hot_alpha(void) {
	for (int i = 0; i < 3000000; i++) acc += (uint64_t)i * 7;
}

__attribute__((noinline)) void hot_beta(void) {
	for (int i = 0; i < 1000000; i++) acc += (uint64_t)i * 7;
}

__attribute__((noinline)) void work(void) {
	hot_alpha();
	hot_beta();
}

int main(void) {
	for (;;) work();
}
