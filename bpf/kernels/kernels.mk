# Kernel matrix (issue 7): boots Debian's kernels in QEMU (KVM when usable,
# software emulation otherwise) and runs the privileged BPF tests, the
# profiler acceptance test and the attach-strategy probe inside each, then
# prints kernel × hook → strategy, fallback order and pass/fail, and checks
# the fallback orders against bpf/kernels/expect.txt. Needs root, the Debian
# packages qemu-system-x86 and busybox-static, and apt access the first time
# (kernels are cached in .cache/kernels/). About 2.5 min under emulation.
#   make test-kernels KERNELS_FLAGS='-suites selftest,readlat'
#   make test-kernels KERNELS_FLAGS='-kernels bullseye:linux-image-cloud-amd64'   # Debian 11's 5.10
KERNELS_FLAGS ?=

.PHONY: test-kernels
test-kernels:
	$(or $(GO),go) run ./bpf/kernels/matrix $(KERNELS_FLAGS)
