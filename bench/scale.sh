#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fork cost at scale, run inside the guest by `make bench-scale` (scripts/vm-run.sh, bench
# kernel, instruction-counting clock). In one boot, ROUNDS interleaved rounds of fork+exit by
# a task in `web` (realistic rules plus the one fork rule that matches) with:
#   base   nothing else
#   vss    VSS more VSs (default 4,000: the registry holds 4,096)
#   tasks  TASKS more classified tasks (default 50,000: one process of sleeping threads in VS
#          `crowd`), so membership lookups run against a table that full
# Writes "config round micro ns" lines to .cache/bench-scale.txt for bench/scale_report.py.
set -euo pipefail
cd "$VS_ROOT"
ROUNDS=${ROUNDS:-6}
VSS=${VSS:-4000}
TASKS=${TASKS:-50000}
# Pinned to CPU 0, address-space randomisation off: as in bench/run.sh, which says why.
B="taskset -c 0 target/release/vs-bench"
aslr=$(cat /proc/sys/kernel/randomize_va_space)
trap 'echo "$aslr" >/proc/sys/kernel/randomize_va_space' EXIT
echo 0 >/proc/sys/kernel/randomize_va_space
OUT=.cache/bench-scale.txt
P=/sys/module/vs/parameters
: >"$OUT"
# Room for TASKS threads: pids, threads, and memory maps (a Rust thread maps its stack and a
# signal stack, each with a guard page: four maps).
echo 4194304 >/proc/sys/kernel/pid_max
echo $((TASKS * 2)) >/proc/sys/kernel/threads-max
echo $((TASKS * 6 + 65536)) >/proc/sys/vm/max_map_count
record() { # CONFIG ROUND: read "micro ns" lines
	while read -r m ns; do echo "$1 $2 $m $ns" >>"$OUT"; done
}
run() { # CONFIG ROUND [SETUP ARGS]
	local config=$1 round=$2
	shift 2
	$B setup realistic
	$B setup rules 1
	[ $# -eq 0 ] || $B setup "$@"
	# The CPU controller's tick over the same stretch: guest ns per tick (its O(VSs) part).
	local t0 n0 t1 n1
	t0=$(cat "$P/cpu_ticks") n0=$(cat "$P/cpu_tick_ns")
	$B --vs web fork_exit fork_exit | record "$config" "$round"
	t1=$(cat "$P/cpu_ticks") n1=$(cat "$P/cpu_tick_ns")
	[ "$t1" -le "$t0" ] || echo "tick $(((n1 - n0) / (t1 - t0)))" | record "$config" "$round"
	$B setup clear
}
for r in $(seq "$ROUNDS"); do
	echo "bench-scale: round $r/$ROUNDS" >&2
	run base "$r"
	run vss "$r" vss "$VSS"
	run tasks "$r" crowd "$TASKS"
done
echo "bench-scale: samples in $OUT" >&2
