#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Lock contention of vs's locks under a storm on every vCPU, for `make bench-lockstat` (run in
# the guest by scripts/vm-run.sh, on the lockstat kernel). For each module of $LOCKSTAT_MODULES
# ("LABEL=PATH ..."; the same boot, ROUNDS interleaved rounds), and for a storm by classified
# tasks (in `www1`, under bench/src/main.rs's realistic rules) and by unclassified ones: clear
# /proc/lock_stat, run one vs-bench worker per CPU (socket+close, fork+exit, pipe round trips),
# and keep the lines of vs's lock classes. bench/lockstat_report.py makes the table.
set -euo pipefail
cd "$VS_ROOT"
B=target/release/vs-bench
ROUNDS=${ROUNDS:-2}
OUT=${BENCH_OUT:-.cache/bench-lockstat.txt}
MICROS="socket_close fork_exit pipe_roundtrip"
cpus=$(nproc)
: >"$OUT"
echo "cpus $cpus" >>"$OUT"
storm() { # vs-bench options: one worker per CPU, each pinned
	local i
	for i in $(seq 0 $((cpus - 1))); do
		taskset -c "$i" $B "$@" $MICROS >/dev/null &
	done
	wait
}
rmmod vs 2>/dev/null || true
for r in $(seq "$ROUNDS"); do
	for spec in $LOCKSTAT_MODULES; do
		label=${spec%%=*}
		insmod "${spec#*=}"
		$B setup realistic
		for who in classified unclassified; do
			echo "lockstat: round $r/$ROUNDS, $label, $who tasks on $cpus CPUs" >&2
			opts=()
			[ "$who" = classified ] && opts=(--vs www1)
			echo 0 >/proc/lock_stat
			echo 1 >/proc/sys/kernel/lock_stat
			t0=$(date +%s%N)
			storm "${opts[@]}"
			t1=$(date +%s%N)
			echo 0 >/proc/sys/kernel/lock_stat
			echo "storm $label $r $who $(((t1 - t0) / 1000000))" >>"$OUT"
			# A class's summary line: "name: con-bounces contentions wait-min wait-max
			# wait-total wait-avg acq-bounces acquisitions hold-min hold-max hold-total
			# hold-avg" (times in us).
			awk -v p="lock $label $r $who" '$1 ~ /^vs_.*:$/ && NF == 13 { print p, $0 }' \
				/proc/lock_stat >>"$OUT"
		done
		$B setup clear
		rmmod vs
	done
done
echo "lockstat: samples in $OUT" >&2
