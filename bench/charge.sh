#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The CPU charge's cost per slice with 1 and with 8 CPUs busy, run in the guest by `make
# bench-charge` (scripts/vm-run.sh: bench kernel, 8 vCPUs, instruction-counting clock). In one
# boot, ROUNDS interleaved rounds of: pipe ping-pong pairs (bench/src/charge.rs) on 1 CPU and
# on 8 at once, with the module absent and, for each module of $CHARGE_MODULES ("LABEL=PATH
# ..."), with the pairs' tasks in a VS without a CPU share (`LABEL`: every slice they run is
# charged to it, and nothing else acts on them) and in one with a 50 % share (`LABEL+share`:
# the CPU controller also samples and renices them). Then, with the last module, a pass with
# its gate_timing on, for the charge's events per round trip. Writes "config round micro ns"
# lines (and "events ..." lines) to $BENCH_OUT for bench/charge_report.py.
set -euo pipefail
cd "$VS_ROOT"
ROUNDS=${ROUNDS:-5}
B=target/release/vs-bench
OUT=${BENCH_OUT:-.cache/bench-charge.txt}
# Each three times a round, interleaved: the report keeps the least.
MICROS="charge1 charge8 charge1 charge8 charge1 charge8"
[ "$(nproc)" -ge 8 ] || { echo "bench-charge: needs 8 CPUs, the guest has $(nproc)" >&2; exit 1; }
# The same page-table layout in every process: see bench/run.sh.
aslr=$(cat /proc/sys/kernel/randomize_va_space)
trap 'echo "$aslr" >/proc/sys/kernel/randomize_va_space' EXIT
echo 0 >/proc/sys/kernel/randomize_va_space
: >"$OUT"
record() { # CONFIG ROUND: read "micro ns" lines
	while read -r m ns; do echo "$1 $2 $m $ns" >>"$OUT"; done
}
rmmod vs 2>/dev/null || true
run() { # LABEL ROUND KO [SHARE]: the pairs in a VS of module KO, with CPU share SHARE or none
	insmod "$3"
	$B setup busy ${4:+"$4"}
	$B --vs busy $MICROS | record "$1" "$2"
	$B setup clear
	rmmod vs
}
configs="absent $CHARGE_MODULES"
for r in $(seq "$ROUNDS"); do
	# Odd rounds in the order given, even ones reversed: what a configuration leaves behind
	# favours none of them.
	order=$configs
	[ $((r % 2)) = 1 ] || order=$(echo "$configs" | tr ' ' '\n' | tac | tr '\n' ' ')
	for spec in $order; do
		label=${spec%%=*}
		echo "bench-charge: round $r/$ROUNDS, $label" >&2
		if [ "$label" = absent ]; then
			$B $MICROS | record absent "$r"
			continue
		fi
		run "$label" "$r" "${spec#*=}"
		run "$label+share" "$r" "${spec#*=}" 50
	done
done
# shellcheck disable=SC2086 # one word per module
set -- $CHARGE_MODULES
last=${!#}
echo "bench-charge: events per round trip, ${last%%=*}" >&2
insmod "${last#*=}"
$B setup busy
$B --vs busy --gates $MICROS | sed "s/^/events /" >>"$OUT"
$B setup clear
rmmod vs
echo "bench-charge: samples in $OUT" >&2
