#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The QEMU tests, run inside the guest (through scripts/vm-run.sh, which loads vs.ko first).
# Each program prints KTAP; the last test checks the kernel log.
#
#   VS_SUITE=all       (default; the test kernel) every test, and a short fuzz run
#   VS_SUITE=smp       (the test kernel booted with 8 vCPUs) the gates, the CPU tests and a
#                      short fuzz run with 6 ioctl threads: storms across more CPUs than the
#                      host has, lockdep watching
#   VS_SUITE=sanitize  (the sanitize kernel: KASAN, KFENCE, kmemleak, UBSAN, failslab; about 4x
#                      slower to boot and run under TCG) the ioctl tests, the io_uring test (only
#                      this kernel has io_uring), a short fuzz run with failslab, load/unload,
#                      then kmemleak; gates, network, hostile-use and timing tests stay on the
#                      test kernel.
set -u
cd "$VS_ROOT"
rc=0
fuzz="target/release/vs_fuzz --ops 20000 --seconds 20 --cycles 3"
case "${VS_SUITE:-all}" in
all)
	tests=(target/release/vs_device target/release/vs_gates target/release/vs_cpu
		target/release/vs_net target/release/vs_hostile "$fuzz" tests/vs_module.sh
		tests/vs_netns.sh tests/vs_vsq.sh tests/vsctl.sh tests/vsctl_rules.sh tests/vsctl_top.sh
		tests/vsctl_apply.sh tests/vs_boot.sh) ;;
smp)
	tests=(target/release/vs_gates target/release/vs_cpu
		"target/release/vs_fuzz --ops 20000 --seconds 30 --cycles 3 --threads 6") ;;
sanitize)
	tests=(target/release/vs_device "/usr/bin/env VS_TEST=io_uring target/release/vs_hostile"
		"target/release/vs_fuzz --ops 6000 --seconds 20 --cycles 2 --failslab"
		tests/vs_module.sh tests/vs_kmemleak.sh) ;;
*)
	echo "not ok 1 run.sh # unknown VS_SUITE=$VS_SUITE"
	exit 1 ;;
esac
for t in "${tests[@]}"; do
	read -ra argv <<<"$t"
	echo "# ==== $t"
	if [ ! -x "${argv[0]}" ]; then
		echo "not ok 1 $(basename "${argv[0]}") # missing: not built"
		rc=1
		continue
	fi
	"${argv[@]}" || rc=1
done

echo "# ==== kernel log"
. "$VS_KTAP_HELPERS"
ktap_print_header
ktap_set_plan 1
failslab=()
[ "${VS_SUITE:-all}" != sanitize ] || failslab=(--failslab)
if dmesg | bash scripts/kernel-errors.sh "${failslab[@]}" | sed "s/^/# /" | grep .; then
	ktap_test_fail "kernel_log_has_no_bug_warning_oops_lockdep"
	rc=1
else
	ktap_test_pass "kernel_log_has_no_bug_warning_oops_lockdep"
fi
ktap_print_totals
exit "$rc"
