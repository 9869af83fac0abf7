#!/usr/bin/env bash
# Show, without vs, why the tests run QEMU's TCG single-threaded (scripts/vm-run.sh).
#
#   bash scripts/tcg-smc-repro.sh multi    # multi-threaded TCG: the guest panics in seconds
#   bash scripts/tcg-smc-repro.sh single   # one TCG thread: 300 rounds, no crash
#
# The guest switches the function tracer on and off for sock_alloc_file (the kernel patches
# that call site with text_poke_bp: int3 first, then the new bytes) while three processes
# create sockets. Under QEMU 7.2's multi-threaded TCG a vCPU can translate the site while
# another vCPU is between invalidating and rewriting it, keep that translation with the int3
# in it, and execute it after the kernel has finished: "Oops: int3" at sock_alloc_file+0x5,
# with no module loaded. vs's load and unload patch its probe sites the same way, which is how
# the fuzzer's unload cycles met it (2 of 3 runs of 30 cycles before the tests went single-
# threaded; 0 of 1 after, and 3 of 3 runs of this script multi-threaded, 0 of 1 single).
set -euo pipefail

if [ "${1:-}" = --guest ]; then
	T=/sys/kernel/tracing
	[ -e $T/current_tracer ] || mount -t tracefs nodev $T
	# Bounded load: three socket loops of at most 90 s each.
	for _ in 1 2 3; do
		timeout 90 python3 -c '
import socket
while True:
    socket.socket().close()
' &
	done
	sleep 1
	rounds=${ROUNDS:-300}
	for i in $(seq 1 "$rounds"); do
		echo sock_alloc_file >$T/set_ftrace_filter
		echo function >$T/current_tracer
		echo nop >$T/current_tracer
		[ $((i % 50)) != 0 ] || echo "round $i of $rounds"
	done
	echo "toggled the tracer $rounds times under load: no crash"
	kill $(jobs -p) 2>/dev/null || true
	wait || true
	exit 0
fi

case "${1:-}" in
single | multi) ;;
*) echo "usage: $0 single|multi" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
VS_TCG_THREAD=$1 VS_NO_LOAD=1 VS_VM_TIMEOUT=${VS_VM_TIMEOUT:-600} \
	exec bash scripts/vm-run.sh bash scripts/tcg-smc-repro.sh --guest
