#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# kmemleak (sanitize kernel): after every other test has run, nothing vs allocated is left
# unreferenced. A leak is vs's when its allocation backtrace names the module, or has a frame
# kmemleak can no longer name (code of a vs.ko that was unloaded since: the only module here).
# Leaks with only built-in frames are listed but are the kernel's own business.
. "$VS_KTAP_HELPERS"

ktap_print_header
ktap_set_plan 1
K=/sys/kernel/debug/kmemleak
grep -q ' /sys/kernel/debug debugfs ' /proc/mounts || mount -t debugfs none /sys/kernel/debug 2>/dev/null
if [ ! -e "$K" ]; then
	ktap_test_skip "no_vs_memory_leaked (no CONFIG_DEBUG_KMEMLEAK: the sanitize kernel has it)"
	ktap_finished
fi

no_vs_leaks() {
	# An object is reported once it has been unreferenced for 5 s and survived two scans.
	echo scan >"$K"; sleep 6; echo scan >"$K"
	local report ours
	report=$(cat "$K")
	ours=$(awk '
		/^unreferenced object/ { if (rec != "" && bad) print rec; rec = $0; bad = 0; next }
		{ rec = rec "\n" $0 }
		/\[vs\]/ || /^ +\[<[0-9a-f]+>\] 0x[0-9a-f]+$/ { bad = 1 }
		END { if (rec != "" && bad) print rec }' <<<"$report")
	ktap_print_msg "kmemleak: $(grep -c '^unreferenced object' <<<"$report") unreferenced objects in all"
	if [ -n "$ours" ]; then
		sed 's/^/# /' <<<"$ours" | head -n 60
		return 1
	fi
}
ktap_test_result "no_vs_memory_leaked" no_vs_leaks
ktap_finished
