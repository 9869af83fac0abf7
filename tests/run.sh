#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# All QEMU tests, run inside the guest by `make check` (through scripts/vm-run.sh, which loads
# vs.ko first). Each program prints KTAP; the last test checks the kernel log.
set -u
cd "$VS_ROOT"
rc=0
for t in target/release/vs_device target/release/vs_gates target/release/vs_cpu target/release/vs_net target/release/vs_hostile tests/vs_module.sh tests/vs_netns.sh tests/vs_vsq.sh tests/vsctl.sh tests/vsctl_rules.sh tests/vsctl_top.sh; do
	echo "# ==== $t"
	if [ ! -x "$t" ]; then
		echo "not ok 1 $(basename "$t") # missing: not built"
		rc=1
		continue
	fi
	"$t" || rc=1
done

echo "# ==== kernel log"
. "$VS_KTAP_HELPERS"
ktap_print_header
ktap_set_plan 1
if dmesg | grep -E "$(cat scripts/kernel-errors.re)" | sed "s/^/# /" | grep .; then
	ktap_test_fail "kernel_log_has_no_bug_warning_oops_lockdep"
	rc=1
else
	ktap_test_pass "kernel_log_has_no_bug_warning_oops_lockdep"
fi
ktap_print_totals
exit "$rc"
