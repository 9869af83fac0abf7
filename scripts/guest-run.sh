#!/usr/bin/env bash
# Runs inside the QEMU guest (started by scripts/vm-run.sh): load vs.ko, run the command,
# then fail if the kernel log shows a BUG, WARNING, Oops, KASAN or lockdep report.
set -u
cd "$VS_ROOT" || exit 90
echo "=== vs-guest-begin ==="
trap 'echo "=== vs-guest-end ==="' EXIT
export PATH="$VS_ROOT/target/release:$PATH"
export VS_KO="${VS_KO:-$VS_ROOT/.cache/kmod-test/vs.ko}"

if [ "${VS_NO_LOAD:-0}" != 1 ]; then
	if ! insmod "$VS_KO"; then
		echo "vm: insmod $VS_KO failed"
		dmesg | tail -n 30 | sed "s/^/dmesg| /"
		exit 91
	fi
fi

"$@"
rc=$?

# The sanitize kernel is the one whose tests inject allocation failures (see kernel-errors.sh).
failslab=()
[ "${VS_KFLAVOUR:-test}" != sanitize ] || failslab=(--failslab)
if dmesg | bash "$VS_ROOT/scripts/kernel-errors.sh" "${failslab[@]}" | grep -q .; then
	echo "vm: the kernel log reports a problem:"
	dmesg | tail -n 80 | sed "s/^/dmesg| /"
	[ "$rc" -eq 0 ] && rc=92
fi
exit "$rc"
