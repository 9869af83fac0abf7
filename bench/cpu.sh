#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# CPU share accuracy, run inside the guest by `make bench-cpu`: 2, 3 and 4 VSs with unequal
# task counts on both vCPUs, sampled every 200 ms; plus plain CFS for the 4-VS case, and the
# controller's own CPU time. bench/cpu_report.py writes docs/bench-cpu.md and the plot.
set -euo pipefail
cd "$VS_ROOT"
B=target/release/vs-bench
OUT=.cache/bench-cpu.txt
SECS=${SECS:-8}
: >"$OUT"
p=/sys/module/vs/parameters
t0=$(cat $p/cpu_tick_ns) n0=$(cat $p/cpu_ticks) w0=$(date +%s%N)
run() { # LABEL SHARES TASKS [baseline]
	echo "bench-cpu: $1" >&2
	$B cpu "$2" "$3" "$SECS" ${4:-} | sed "s/^/$1 /" >>"$OUT"
}
run two 25,75 4,2
run three 20,30,50 6,3,2
run four 10,20,30,40 5,4,3,2
run four-cfs 10,20,30,40 5,4,3,2 baseline
t1=$(cat $p/cpu_tick_ns) n1=$(cat $p/cpu_ticks) w1=$(date +%s%N)
echo "overhead $((t1 - t0)) $((w1 - w0)) $((n1 - n0)) $(cat $p/cpu_period_ms)" >>"$OUT"
python3 bench/cpu_report.py "$OUT" docs
cat docs/bench-cpu.md
