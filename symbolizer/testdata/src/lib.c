#include "cap.h"

NOINLINE int lib_work(int x) {
	capture(0); /* LINE_LIB */
	return x ^ 5;
}

void *lib_slot(void) { return slots[0]; }
