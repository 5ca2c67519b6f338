#include "cap.h"

static inline __attribute__((always_inline)) int inlined_leaf(int x) {
	capture(0); /* LINE_LEAF */
	return x * 7;
}

NOINLINE int outer_fn(int x) {
	int r = inlined_leaf(x); /* LINE_OUTER */
	return r + 1;
}

int main(void) {
	int r = outer_fn(3);
	report(1);
	return r == 0;
}
