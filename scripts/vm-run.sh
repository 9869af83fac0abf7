#!/usr/bin/env bash
# Boot the vs kernel of flavour $VS_KFLAVOUR (default: test) under QEMU (TCG: KVM hangs on these machines), 2 vCPUs
# ($VS_VM_CPUS to change) and 2 GB ($VS_VM_MEMORY), load vs.ko,
# run "$@" as root in the guest with vsctl on PATH, and exit with its status.
# Fails (non-zero, with the console tail) on a guest panic, a hang (VS_VM_TIMEOUT seconds,
# default 1200) or a BUG/WARNING/Oops/KASAN/lockdep line in the guest's kernel log.
set -euo pipefail
. "$(dirname "$0")/common.sh"

(($#)) || die "usage: vm-run.sh COMMAND [ARGS...]"
# VS_KDIR: boot an already built kernel tree instead of the flavour's cached one.
KDIR=${VS_KDIR:-$(bash "$VS_ROOT/scripts/build-kernel.sh")}
IMG=$KDIR/arch/x86/boot/bzImage
[ -f "$IMG" ] || die "no kernel image at $IMG"
VS_KO=${VS_KO:-$(module_dir)/vs.ko}
[ "${VS_NO_LOAD:-0}" = 1 ] || [ -f "$VS_KO" ] || die "$VS_KO not built: run 'make module' first"

mkdir -p "$VS_ROOT/.cache"
LOG=$(mktemp "$VS_ROOT/.cache/vm.XXXXXX.log")
# The guest command, written to a file so that any quoting survives the trip.
CMDFILE=$LOG.cmd
{
	printf 'export VS_ROOT=%q VS_NO_LOAD=%q VS_KTAP_HELPERS=%q VS_KO=%q VS_KFLAVOUR=%q VS_ICOUNT=%q VS_SUITE=%q\n' "$VS_ROOT" "${VS_NO_LOAD:-0}" "$VS_KTAP_HELPERS" "$VS_KO" "$VS_KFLAVOUR" "${VS_ICOUNT:-0}" "${VS_SUITE:-all}"
	printf 'exec bash %q' "$VS_ROOT/scripts/guest-run.sh"
	printf ' %q' "$@"
	printf '\n'
} >"$CMDFILE"

# VS_ICOUNT=1: QEMU's instruction-counting clock (guest time = instructions executed), so
# that timings inside the guest are repeatable whatever else the host is doing.
#
# TCG runs the vCPUs in one host thread unless VS_TCG_THREAD=multi. QEMU 7.2's multi-threaded
# TCG can keep running a stale translation of kernel text another vCPU is patching (ftrace,
# kprobes, as vs's load and unload do): the guest then executes an int3 the kernel has already
# removed and panics ("Oops: int3"). scripts/tcg-smc-repro.sh shows it without vs. Benchmarks
# that want both host cores opt in; -icount is single-threaded by nature.
THREAD=${VS_TCG_THREAD:-single}
[ "${VS_ICOUNT:-0}" != 1 ] || THREAD=single
QOPTS="-accel tcg,thread=$THREAD"
mode="QEMU/TCG (thread=$THREAD)"
if [ "${VS_ICOUNT:-0}" = 1 ]; then
	QOPTS="$QOPTS -icount shift=0,sleep=off"
	mode="$mode -icount shift=0,sleep=off"
fi
QEMU_OPTS=(--qemu-opts="$QOPTS")
CPUS=${VS_VM_CPUS:-2}
log "vm: booting $(basename "$KDIR") under $mode with $CPUS vCPUs (console log: $LOG)"
start=$(date +%s)
set +e
# --verbose puts the guest console in the log too, for the tail shown on failure. Shown live:
# what the command prints between guest-run.sh's markers, less interleaved kernel messages.
timeout --kill-after=10 "${VS_VM_TIMEOUT:-1200}" \
	vng --disable-kvm --cpus "$CPUS" --memory "${VS_VM_MEMORY:-2G}" --verbose "${QEMU_OPTS[@]}" \
	--run "$IMG" --user root --rwdir "$VS_ROOT" \
	--append "root=/dev/root printk.time=1 panic=-1" \
	--exec "bash $CMDFILE" </dev/null 2>&1 | tee "$LOG" |
	awk '/^=== vs-guest-begin ===/ { on = 1; next } /^=== vs-guest-end ===/ { on = 0; next }
		on && !/^\[ *[0-9]+\.[0-9]+\]/ { print; fflush() }'
rc=${PIPESTATUS[0]}
set -e
took=$(($(date +%s) - start))
rm -f "$CMDFILE"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	echo "vm: guest hung (no exit within ${VS_VM_TIMEOUT:-1200} s); console tail:" >&2
	tail -n 40 "$LOG" >&2
elif grep -qE 'Kernel panic|end Kernel panic' "$LOG"; then
	echo "vm: guest kernel panicked; console tail:" >&2
	tail -n 40 "$LOG" >&2
	[ "$rc" -ne 0 ] || rc=255
elif [ "$rc" -ne 0 ]; then
	echo "vm: guest command failed with status $rc after $took s; console tail:" >&2
	grep -E '^\[ *[0-9]+\.[0-9]+\]' "$LOG" | tail -n 25 >&2 || true
else
	log "vm: done in $took s"
	rm -f "$LOG"
fi
exit "$rc"
