#!/bin/busybox sh
# vigil kernel-matrix guest: mount what BPF needs, load modules, run each job
# with its own timeout, report on the second serial port (the first carries
# the kernel's own messages, which would otherwise cut into result lines),
# then power off.
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/bin HOME=/root TMPDIR=/tmp
mkdir -p /proc /sys /dev /tmp /root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /var && ln -s /run /var/run
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
out=/dev/ttyS1
[ -c $out ] || out=/dev/console
echo "vigil-kernel: $(uname -r)" > $out
echo "vigil-cpus: $(nproc)" > $out
while read -r mod; do
	if insmod /modules/$mod.ko 2> /tmp/insmod.err; then
		echo "vigil-module: $mod ok" > $out
	else
		echo "vigil-module: $mod failed: $(cat /tmp/insmod.err)" > $out
	fi
done < /modules.order
while IFS='	' read -r name secs dir cmd; do
	echo "vigil-begin: $name" > $out
	start=$(date +%s)
	cd $dir
	timeout $secs $cmd > $out 2>&1
	rc=$?
	cd /
	# A job killed mid-line would otherwise swallow the marker.
	echo > $out
	echo "vigil-end: $name rc=$rc seconds=$(( $(date +%s) - start ))" > $out
done < /jobs.txt
echo "vigil-done" > $out
sync
poweroff -f
