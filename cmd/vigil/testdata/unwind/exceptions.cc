// C++ at -O2 with an exception thrown and caught on the hot path: samples
// land in cpp_compute and in the exception machinery itself (libstdc++'s
// __cxa_throw, libgcc_s's _Unwind_RaiseException and its FDE search), and
// each must still lead back through cpp_thrower and cpp_driver to main.
// extern "C" keeps the names plain so both profilers print the same ones.
#include <cstdint>
#include <stdexcept>

volatile std::uint64_t sink;

extern "C" __attribute__((noinline, noclone)) std::uint64_t cpp_compute(std::uint64_t x)
{
	for (int i = 0; i < 400; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		x ^= x >> 27;
	}
	return x;
}

extern "C" __attribute__((noinline, noclone)) std::uint64_t cpp_thrower(std::uint64_t x)
{
	std::uint64_t r = cpp_compute(x);
	__asm__ volatile("" ::: "memory");
	if ((r & 1) == 0 || x % 2 == 0)
		throw std::runtime_error("cpp_thrower");
	return r;
}

extern "C" __attribute__((noinline, noclone)) std::uint64_t cpp_driver(std::uint64_t x)
{
	std::uint64_t total = 0;
	for (int i = 0; i < 64; i++) {
		try {
			total += cpp_thrower(x + i);
		} catch (const std::runtime_error &) {
			total ^= i;
		}
	}
	return total;
}

int main()
{
	for (std::uint64_t i = 0;; i++)
		sink = cpp_driver(i);
}
