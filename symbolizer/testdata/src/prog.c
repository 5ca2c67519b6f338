#include "cap.h"

NOINLINE int hot_alpha(int x) {
	capture(0); /* LINE_ALPHA */
	return x + 1;
}

static NOINLINE int static_beta(int x) {
	capture(1); /* LINE_BETA */
	return x * 3;
}

#ifdef VARIANT
int variant_only(void) { return 7; }
#endif

int main(void) {
	int r = hot_alpha(1) + static_beta(2);
	report(2);
	return r == 0;
}
