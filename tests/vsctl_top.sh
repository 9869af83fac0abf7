#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# vsctl top and the CPU figures of show/stats end to end: NDJSON frames, CPU% of a busy and
# of a sleeping VS, cpu_time_ns/cpu_subtree_ns, the controller's target and nice of a managed
# pool, and the text frames when stdout is not a terminal. Every test starts its own busy
# loops and sleepers, and kills them and destroys its VSs (all named top_*) before it ends.
. "$VS_KTAP_HELPERS"
. "$(dirname "$0")/vsctl_lib.sh"

ktap_print_header
ktap_set_plan 5

# Tasks started by the running test: killed by cleanup.
PIDS=()

# spin VS: start a busy loop and move it to VS; its pid is in $LAST.
spin() {
	sh -c 'while :; do :; done' &
	LAST=$!
	PIDS+=("$LAST")
	want "tasks moved into $1" "$(vsctl addprocess "$1" "$LAST")" 1
}

# nap VS: start a sleeper and move it to VS; its pid is in $LAST.
nap() {
	sleep 100 &
	LAST=$!
	PIDS+=("$LAST")
	want "tasks moved into $1" "$(vsctl addprocess "$1" "$LAST")" 1
}

# Kill what the test started, then destroy every top_* VS, children first (a VS object's own
# "name" is the only one indented by exactly four blanks; parents come before children).
cleanup() {
	local p n
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	PIDS=()
	for n in $(vsctl list --json | sed -nE 's/^    "name": "(top_[^"]*)",?$/\1/p' | tac); do
		vsctl destroy "$n" || ktap_print_msg "cleanup: cannot destroy $n"
	done
}
trap 'cleanup; rm -f "$ERR"' EXIT

# t NAME FUNCTION: run one test, then clean up whatever it left.
t() {
	ktap_test_result "$1" "$2"
	cleanup
}

# The controller's period, for waits that need a tick to have run.
PERIOD_MS=$(cat /sys/module/vs/parameters/cpu_period_ms 2>/dev/null || echo 100)
ticks() { sleep "$(awk -v p="$PERIOD_MS" -v n="$1" 'BEGIN { printf "%.3f", p * n / 1000 }')"; }

cleanup

json_frames() {
	local out
	vsctl create top_a >/dev/null || return 1
	out=$(vsctl top --count 2 --interval 0.5 --json) || return 1
	want "frames" "$(wc -l <<<"$out")" 2 || return 1
	# Every line on its own is a JSON object with a root row and top_a, in tree order.
	want "frames parsed one by one" "$(jget '"ok"' <<<"$(head -1 <<<"$out")")$(jget '"ok"' <<<"$(tail -1 <<<"$out")")" okok || return 1
	want "frame layout" "$("$PY" -c '
import json, sys
fs = [json.loads(l) for l in sys.stdin]
keys = {"id", "name", "cpu_percent", "tx_bytes_per_s", "target_percent", "nice", "procs", "reclass", "forks"}
print([
    [sorted(f) for f in fs] == [["interval", "time", "vs"]] * 2,
    all(set(v) == keys for f in fs for v in f["vs"]),
    [f["vs"][0]["id"] for f in fs], [f["vs"][0]["name"] for f in fs],
    [f["vs"][0]["nice"] for f in fs],
    all(v["cpu_percent"] is not None and v["cpu_percent"] >= 0 for f in fs for v in f["vs"]),
    all(isinstance(f["vs"][0]["tx_bytes_per_s"], int) and f["vs"][0]["tx_bytes_per_s"] >= 0 for f in fs),
    all(0.4 < f["interval"] < 5 for f in fs),
    fs[1]["time"] > fs[0]["time"],
    "top_a" in [v["name"] for v in fs[1]["vs"]],
])' <<<"$out")" "[True, True, [0, 0], ['root', 'root'], [None, None], True, True, True, True, True]"
}
t "top_json_two_frames_with_root" json_frames

busy_and_idle() {
	local out got
	vsctl create top_busy >/dev/null && vsctl create top_idle >/dev/null || return 1
	spin top_busy && nap top_idle || return 1
	out=$(vsctl top --count 1 --interval 1 --json) || return 1
	got=$(jget '[[v["cpu_percent"], v["procs"]] for n in ("top_busy", "top_idle") for v in d["vs"] if v["name"] == n]' <<<"$out")
	ktap_print_msg "top_busy, top_idle: [CPU%, PROCS]: $got"
	want "busy > 50% and idle < 5% of a CPU, one task each" \
		"$(jget '[v["cpu_percent"] > 50 for v in d["vs"] if v["name"] == "top_busy"] + [v["cpu_percent"] < 5 for v in d["vs"] if v["name"] == "top_idle"] + [v["procs"] for v in d["vs"] if v["name"].startswith("top_")]' <<<"$out")" \
		"[true, true, 1, 1]"
}
t "top_busy_vs_over_50_idle_vs_under_5" busy_and_idle

cpu_time_and_subtree() {
	local busy grp b_ns
	vsctl create top_grp >/dev/null && vsctl create top_busy --parent top_grp >/dev/null || return 1
	spin top_busy || return 1
	sleep 1
	busy=$(vsctl show top_busy --json) || return 1
	b_ns=$(jget 'd["stats"]["cpu_time_ns"]' <<<"$busy")
	ktap_print_msg "top_busy: $(jget '[d["stats"][k] for k in ("cpu_time_ns", "cpu_subtree_ns")]' <<<"$busy")"
	want "busy: cpu_time_ns > 0.2 s, cpu_subtree_ns >= cpu_time_ns" \
		"$(jget '[d["stats"]["cpu_time_ns"] > 200_000_000, d["stats"]["cpu_subtree_ns"] >= d["stats"]["cpu_time_ns"]]' <<<"$busy")" \
		"[true, true]" || return 1
	# The parent has no task of its own; its subtree catches up with the child at a tick.
	ticks 3
	grp=$(vsctl show top_grp --json) || return 1
	want "top_grp: own time 0, subtree >= the child's earlier time" \
		"$(jget '[d["stats"]["cpu_time_ns"], d["stats"]["cpu_subtree_ns"] >= '"$b_ns"']' <<<"$grp")" \
		"[0, true]" || return 1
	vsctl show top_grp | grep -qE '^cpu subtree +[0-9]+\.[0-9]{3}s$' &&
		vsctl show top_busy | grep -qE '^cpu time +[0-9]+\.[0-9]{3}s$' &&
		vsctl stats top_busy --json | jget 'd["stats"]["cpu_time_ns"] > 0 and all(k in d["stats"] for k in ("cpu_subtree_ns", "cpu_target_ppm", "cpu_used_ppm", "cpu_nice"))' | grep -qx true ||
		{ ktap_print_msg "show/stats text:"; vsctl show top_grp | sed 's/^/# /'; return 1; }
}
t "show_cpu_time_and_subtree" cpu_time_and_subtree

managed_pool() {
	local out got
	vsctl create top_share --cpu-share 50 >/dev/null || return 1
	spin top_share && spin top_share || return 1
	ticks 5
	out=$(vsctl top --count 1 --interval 0.5 --json) || return 1
	got=$(jget '[[v["name"], v["target_percent"], v["nice"]] for v in d["vs"] if v["name"] in ("root", "top_share")]' <<<"$out")
	ktap_print_msg "[name, TARGET%, NICE]: $got"
	# A pool with its own share, busy: a target and a nice; the root pool: never reniced.
	want "target and nice" "$(jget '[(v["target_percent"] or 0) > 0 and isinstance(v["nice"], int) for v in d["vs"] if v["name"] == "top_share"] + [d["vs"][0]["nice"]]' <<<"$out")" \
		"[true, null]" || return 1
	vsctl show top_share | grep -qE '^cpu share now: used [0-9.]+% of target [0-9.]+% \(nice -?[0-9]+\)$' ||
		{ ktap_print_msg "show text:"; vsctl show top_share | sed 's/^/# /'; return 1; }
}
t "top_target_and_nice_of_a_managed_pool" managed_pool

text_frames() {
	local out
	vsctl create top_t >/dev/null && vsctl create top_tk --parent top_t >/dev/null || return 1
	out=$(vsctl top --count 2 --interval 0.2) || return 1
	# Not a terminal: no escape sequences, frames a blank line apart, each under a header row.
	if grep -q $'\x1b' <<<"$out"; then
		ktap_print_msg "escape sequences on a pipe"
		return 1
	fi
	want "header rows" "$(grep -cE '^NAME +ID +CPU% +TX/s +TARGET% +NICE +PROCS +RECLASS +FORKS$' <<<"$out")" 2 &&
		want "blank lines" "$(grep -c '^$' <<<"$out")" 1 &&
		want "first line" "$(head -1 <<<"$out" | awk '{ print $1, $3 }')" "NAME CPU%" &&
		want "root rows" "$(grep -cE '^root +0 +[0-9]+\.[0-9] +[0-9]+(\.[0-9])?[KMGTP]? ' <<<"$out")" 2 &&
		grep -qE '^(├|└)─ top_t +[0-9]+ +0\.0 ' <<<"$out" &&
		grep -qE '^(│| )  └─ top_tk +[0-9]+ +0\.0 ' <<<"$out" ||
		{ ktap_print_msg "text frames:"; sed 's/^/# /' <<<"$out"; return 1; }
}
t "top_text_frames_when_not_a_tty" text_frames

ktap_finished
