#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Gate overhead benchmark, run inside the guest by `make bench` (scripts/vm-run.sh). In one
# boot, ROUNDS interleaved rounds of: module absent, loaded with no rules (task in the root),
# loaded with a realistic rule set (task in a classified VS); then fork cost with 1 and 100
# rules more, and with the rule table full (16,384). Writes samples to $BENCH_OUT; bench/report.py (run by `make bench` on the host,
# over an instruction-counted boot and a plain TCG boot) turns them into ratios to the
# module-absent figure.
set -euo pipefail
cd "$VS_ROOT"
ROUNDS=${ROUNDS:-5}
# Every benchmark runs pinned to CPU 0 (its children too), with address-space randomisation
# off: under the instruction-counting clock, fork+exit varied by +-3 % from one process to the
# next with ASLR (page-table layout) and with where the child ran; so, it repeats within 1 %.
B="taskset -c 0 target/release/vs-bench"
aslr=$(cat /proc/sys/kernel/randomize_va_space)
trap 'echo "$aslr" >/proc/sys/kernel/randomize_va_space' EXIT
echo 0 >/proc/sys/kernel/randomize_va_space
GATE_MICROS="fork_exit fork_exec socket_close tcp_connect_accept pipe_roundtrip unix_roundtrip"
# fork+exit and TCP connect+accept three times per configuration and round: report.py keeps a
# round's least figure (background work in the guest only ever adds time).
MICROS="fork_exit fork_exit tcp_connect_accept tcp_connect_accept $GATE_MICROS"
# fork+exec execs a static binary that only exits, from the guest's own tmpfs: /bin/true and
# its libraries would come over 9p, whose I/O is not counted as instructions.
export VS_BENCH_EXEC=/tmp/vs-bench-true
printf 'void _start(void) { __asm__ volatile("mov $60, %%eax\\n xor %%edi, %%edi\\n syscall"); }\n' \
	>/tmp/vs-bench-true.c
clang -static -nostdlib -fuse-ld=lld -O2 -o "$VS_BENCH_EXEC" /tmp/vs-bench-true.c
if [ "${VS_ICOUNT:-0}" = 1 ]; then mode=icount; else mode=tcg; fi
OUT=${BENCH_OUT:-.cache/bench-gates-$mode.txt}
GATES_OUT=${OUT%.txt}-handlers.txt
: >"$OUT"
: >"$GATES_OUT"
record() { # CONFIG ROUND: read "micro ns" lines
	while read -r m ns; do echo "$1 $2 $m $ns" >>"$OUT"; done
}
absent() { # ROUND: the module-absent figures, the module loaded again after them
	rmmod vs
	$B $MICROS | record absent "$1"
	insmod "$VS_KO"
}
for r in $(seq "$ROUNDS"); do
	echo "bench: round $r/$ROUNDS" >&2
	# Odd rounds measure the module absent first, even rounds last: what an rmmod or insmod
	# leaves behind (freed tables, a warmer page allocator) then favours neither side.
	[ $((r % 2)) = 0 ] || absent "$r"
	$B $MICROS | record loaded "$r"
	$B setup realistic
	$B --vs www1 $MICROS | record rules "$r"
	if [ $((r % 2)) = 0 ]; then
		$B setup clear
		absent "$r"
		$B setup realistic
	fi
	# Then each gate handler's own cost over the same micros (a pass of its own: timing
	# the handlers adds two clock reads to each).
	$B --vs www1 --gates $GATE_MICROS | sed "s/^/$r /" >>"$GATES_OUT"
	$B setup clear
	for n in 1 100 full; do
		$B setup realistic
		$B setup rules "$n"
		$B --vs web fork_exit fork_exit | record "rules$n" "$r"
		$B setup clear
	done
done
echo "bench: samples in $OUT, handler costs in $GATES_OUT" >&2
