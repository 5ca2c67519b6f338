# Kernel matrix (issue 7): boots Debian's kernels in QEMU and runs the
# privileged BPF tests and the attach-strategy probe inside each, then prints
# kernel × hook → strategy and pass/fail. Needs root, apt access the first
# time (kernels are cached in .cache/kernels/) and the Debian packages
# qemu-system-x86 and busybox-static.
#   make test-kernels KERNELS_FLAGS='-suites selftest,readlat'
#   make test-kernels KERNELS_FLAGS='-kernels linux-image-6.12-cloud-amd64'
KERNELS_FLAGS ?=

.PHONY: test-kernels
test-kernels:
	go run ./bpf/kernels/matrix $(KERNELS_FLAGS)
