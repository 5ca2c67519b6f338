#include "cap.h"

namespace ns {
struct Klass {
	int v;
	NOINLINE int method(int x);
};

int Klass::method(int x) {
	capture(0); /* LINE_METHOD */
	return v + x;
}
} // namespace ns

int main() {
	ns::Klass k{2};
	int r = k.method(5);
	report(1);
	return r == 0;
}
