#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Module lifecycle: load, unload, rmmod while /dev/vs is open, state freed on unload.
# Runs in the guest with vs.ko loaded ($VS_KO); leaves it loaded.
. "$VS_KTAP_HELPERS"

ktap_print_header
ktap_set_plan 8

nr_vs() { vsctl version --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["nr_vs"])'; }

loaded() {
	[ -c /dev/vs ] && [ -d /sys/module/vs ] && vsctl version >/dev/null
}
ktap_test_result "module_loaded_device_present" loaded

# Every optional hook attached on this kernel (a missing one would refuse its gate's rules).
# A pipe rule hooks pipe_read, and deleting it unhooks it (a second later); arming and
# disarming did not fail.
hooks_complete() {
	local p=/sys/module/vs/parameters hooks=/sys/kernel/debug/tracing/enabled_functions id _
	[ -z "$(cat $p/unhooked)" ] || { ktap_print_msg "unhooked: $(cat $p/unhooked)"; return 1; }
	id=$(vsctl addrule '(pipe-read, *, req=root) -> (keep)') || return 1
	grep -qE "^pipe_read " "$hooks" ||
		{ ktap_print_msg "a pipe rule did not hook pipe_read"; vsctl delrule "$id"; return 1; }
	vsctl delrule "$id" >/dev/null || return 1
	for _ in $(seq 50); do
		grep -qE "^pipe_read " "$hooks" || break
		sleep 0.1
	done
	! grep -qE "^pipe_read " "$hooks" || { ktap_print_msg "pipe_read still hooked 5 s after the last pipe rule"; return 1; }
	[ "$(cat $p/arm_failures)" = 0 ] || { ktap_print_msg "arm_failures: $(cat $p/arm_failures)"; return 1; }
}
ktap_test_result "every_optional_hook_attached_and_armed" hooks_complete

rmmod_while_open() {
	exec 3</dev/vs || return 1
	if rmmod vs 2>/dev/null; then
		ktap_print_msg "rmmod succeeded with /dev/vs open"
		exec 3<&-
		insmod "$VS_KO"
		return 1
	fi
	vsctl version >/dev/null || { exec 3<&-; return 1; }
	exec 3<&-
	rmmod vs || return 1
	[ ! -e /dev/vs ] || { ktap_print_msg "/dev/vs still there after rmmod"; return 1; }
	# No probe or function hook of vs's is left behind.
	local hooks=/sys/kernel/debug/tracing/enabled_functions probes=/sys/kernel/debug/kprobes/list
	[ -r "$hooks" ] && [ -r "$probes" ] || { ktap_print_msg "no $hooks or $probes"; insmod "$VS_KO"; return 1; }
	if grep -qE " (kernel_clone|tcp_v4_conn_request|inet_csk_listen_stop)\+" "$probes" ||
		grep -qE "^(sock_alloc_file|tcp_connect|free_pipe_info|exchange_tids|pipe_read|store_msg|inet_csk_accept) " "$hooks"; then
		ktap_print_msg "a probe or hook is left after rmmod"
		insmod "$VS_KO"
		return 1
	fi
	insmod "$VS_KO"
}
ktap_test_result "rmmod_fails_while_open_then_succeeds" rmmod_while_open

state_freed_on_unload() {
	vsctl create keep1 >/dev/null && vsctl create keep2 --parent keep1 --cpu-share 50 >/dev/null || return 1
	[ "$(nr_vs)" = 3 ] || return 1
	rmmod vs || { ktap_print_msg "rmmod with VSs present failed"; return 1; }
	insmod "$VS_KO" || return 1
	[ "$(nr_vs)" = 1 ] || { ktap_print_msg "state survived unload"; return 1; }
}
ktap_test_result "rmmod_with_vss_then_fresh_state" state_freed_on_unload

cycles() {
	local i
	for i in $(seq 1 10); do
		rmmod vs || return 1
		insmod "$VS_KO" || return 1
		vsctl create "cycle$i" >/dev/null || return 1
	done
	[ "$(nr_vs)" = 2 ]
}
ktap_test_result "ten_load_unload_cycles" cycles
vsctl destroy cycle10 >/dev/null 2>&1

unload_with_everything_active() {
	vsctl create web --max-procs 50 >/dev/null && vsctl create www1 --id 1 --parent web >/dev/null &&
		vsctl addrule '(fork, web) -> (www1)' >/dev/null &&
		vsctl addrule '(exec, *, path=/usr/bin/sleep) -> (web)' >/dev/null || return 1
	sleep 60 &
	local member=$!
	# A listener and a pipe reader keep probes busy while the module goes.
	python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); time.sleep(60)' &
	local lst=$!
	(vsctl addprocess web $BASHPID >/dev/null; while :; do /bin/true; done) &
	local forker=$!
	sleep 1
	[ "$(vsctl which $member --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')" = web ] ||
		{ ktap_print_msg "exec rule did not classify sleep"; return 1; }
	rmmod vs || { kill $member $lst $forker; return 1; }
	# Everything keeps running without the module: the tasks, and forks.
	kill -0 $member && kill -0 $lst && kill -0 $forker && /bin/true || return 1
	kill $member $lst $forker
	wait $member $lst $forker 2>/dev/null
	insmod "$VS_KO" || return 1
	[ "$(nr_vs)" = 1 ] && [ -z "$(vsctl rules --json | python3 -c 'import json,sys; print(json.load(sys.stdin) or "")')" ]
}
ktap_test_result "rmmod_with_rules_members_and_probes_active" unload_with_everything_active

nice_restored_on_unload() {
	local a r
	vsctl create lowcpu --cpu-share 10 >/dev/null || return 1
	# Contention on CPU 0 with unclassified work: vs makes lowcpu's task nicer than its own 2.
	taskset -c 0 sh -c 'while :; do :; done' &
	r=$!
	nice -n 2 taskset -c 0 sh -c 'while :; do :; done' &
	a=$!
	vsctl addprocess lowcpu $a >/dev/null || return 1
	sleep 2
	local during
	during=$(ps -o ni= -p $a | tr -d ' ')
	rmmod vs || { kill $a $r; return 1; }
	local after
	after=$(ps -o ni= -p $a | tr -d ' ')
	kill $a $r
	wait $a $r 2>/dev/null
	insmod "$VS_KO" || return 1
	[ "$during" -gt 2 ] || { ktap_print_msg "vs did not renice the task (nice $during)"; return 1; }
	[ "$after" = 2 ] || { ktap_print_msg "nice after rmmod: $after, want 2"; return 1; }
}
ktap_test_result "rmmod_gives_reniced_tasks_their_nice_back" nice_restored_on_unload

# gate_timing=1 makes each gate handler count its events and time (gate_cost); 0 stops it.
gate_events() { # GATE: its event count in gate_cost (0 when absent)
	awk -v g="$1" '$1 == g { n = $2 } END { print n + 0 }' /sys/module/vs/parameters/gate_cost
}
gate_timing_counts_each_gate() {
	local p=/sys/module/vs/parameters sockets='import socket
for _ in range(50): socket.socket().close()'
	vsctl create timed >/dev/null || return 1
	echo 1 >$p/gate_timing || return 1
	(vsctl addprocess timed $BASHPID >/dev/null && python3 -c "$sockets") || return 1
	local n ns
	n=$(gate_events socket)
	ns=$(awk '$1 == "socket" { print $3 }' $p/gate_cost)
	[ "$n" -ge 50 ] && [ "${ns:-0}" -gt 0 ] ||
		{ ktap_print_msg "timing on: socket events $n, ns ${ns:-none}"; cat $p/gate_cost; return 1; }
	grep -q '^clock_pair_ns [0-9]' $p/gate_cost || { ktap_print_msg "no clock_pair_ns line"; return 1; }
	# Turning it off clears the counters, and nothing counts while it is off.
	echo 0 >$p/gate_timing || return 1
	(vsctl addprocess timed $BASHPID >/dev/null && python3 -c "$sockets") || return 1
	n=$(gate_events socket)
	[ "$n" = 0 ] || { ktap_print_msg "timing off: socket events $n"; return 1; }
	[ "$(cat $p/gate_timing)" = 0 ] || return 1
	if echo maybe >$p/gate_timing 2>/dev/null; then
		ktap_print_msg "gate_timing took 'maybe'"
		return 1
	fi
	vsctl destroy timed >/dev/null
}
ktap_test_result "gate_timing_counts_each_gate_and_stops" gate_timing_counts_each_gate

ktap_finished
