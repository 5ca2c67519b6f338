# Kernel matrix (issue 7): boots Debian's kernels in QEMU (KVM when usable,
# software emulation otherwise) and runs the privileged BPF tests, the
# profiler acceptance test and the attach-strategy probe inside each, then
# prints kernel × hook → strategy, fallback order and pass/fail, and checks
# the fallback orders against bpf/kernels/expect.txt. Needs root, the Debian
# packages qemu-system-x86 and busybox-static, and apt access the first time
# (kernels are cached in .cache/kernels/). Kernels: Debian 12's 6.1 and 6.12,
# Debian 11's 5.10. About 3.5 min under emulation on an idle 2-core machine.
#   make test-kernels KERNELS_FLAGS='-suites selftest,readlat'
#   make test-kernels KERNELS_FLAGS='-kernels linux-image-6.12-cloud-amd64'
KERNELS_FLAGS ?=

.PHONY: test-kernels
test-kernels:
	$(or $(GO),go) run ./bpf/kernels/matrix $(KERNELS_FLAGS)
