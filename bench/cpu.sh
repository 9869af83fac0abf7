#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# CPU share accuracy, run inside the guest by `make bench-cpu`: 2, 3 and 4 groups with unequal
# task counts on both vCPUs, held by vs and, for the 4-group case, by cgroup v2 `cpu.weight`
# with the same weights and tasks (what a user would use instead) and by nobody (plain CFS);
# then the settling after a share change and after a group turns busy, vs against cgroup v2;
# and the controller's own CPU time. Sampled every 100 ms. bench/cpu_report.py (on the host,
# run by `make bench-cpu`) writes docs/bench-cpu.md and the plots.
set -euo pipefail
cd "$VS_ROOT"
B=target/release/vs-bench
OUT=.cache/bench-cpu.txt
SECS=${SECS:-8}
echo "# kernel $(uname -r), the ${VS_KFLAVOUR:-?} flavour" >"$OUT"
p=/sys/module/vs/parameters
t0=$(cat $p/cpu_tick_ns) n0=$(cat $p/cpu_ticks) w0=$(date +%s%N)
run() { # LABEL CTL SHARES TASKS [change=SHARES@SEC] [late=I@SEC]
	local label=$1
	shift
	echo "bench-cpu: $label" >&2
	$B cpu "$1" "$2" "$3" "$SECS" "${@:4}" | sed "s/^/$label /" >>"$OUT"
}
CG=/sys/fs/cgroup
grep -q "^cgroup2 $CG " /proc/mounts || { mkdir -p $CG && mount -t cgroup2 none $CG; }
grep -qw cpu $CG/cgroup.subtree_control || echo +cpu >$CG/cgroup.subtree_control
run two vs 25,75 4,2
run three vs 20,30,50 6,3,2
run four vs 10,20,30,40 5,4,3,2
run four-cgroup cgroup 10,20,30,40 5,4,3,2
run four-cfs cfs 10,20,30,40 5,4,3,2
# Settling is decided by the first clean second after the event, which the 100 ms sampling
# noise of a single run moves by several tenths: SETTLE_REPS runs of each, interleaved.
for r in $(seq "${SETTLE_REPS:-5}"); do
	run "change-vs#$r" vs 25,75 4,2 change=75,25@4
	run "change-cgroup#$r" cgroup 25,75 4,2 change=75,25@4
	run "busy-vs#$r" vs 20,30,50 3,3,3 late=2@4
	run "busy-cgroup#$r" cgroup 20,30,50 3,3,3 late=2@4
done
t1=$(cat $p/cpu_tick_ns) n1=$(cat $p/cpu_ticks) w1=$(date +%s%N)
echo "overhead $((t1 - t0)) $((w1 - w0)) $((n1 - n0)) $(cat $p/cpu_period_ms)" >>"$OUT"
echo "bench-cpu: samples in $OUT" >&2
