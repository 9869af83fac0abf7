#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# vsctl's rule and process commands end to end: addrule in the paper's notation (with
# alternatives), grammar errors that point at the token, rules/delrule, addprocess, which, ps.
. "$VS_KTAP_HELPERS"
. "$(dirname "$0")/vsctl_lib.sh"

ktap_print_header
ktap_set_plan 6

cleanup_all() {
	local id
	for id in $(vsctl rules --json | jget '" ".join(str(r["id"]) for r in d)'); do vsctl delrule "$id"; done
	for v in r_fcgi r_www2 r_www1; do vsctl destroy "$v" >/dev/null 2>&1; done
}
trap 'cleanup_all; rm -f "$ERR"' EXIT
vsctl create r_www1 --id 11 >/dev/null && vsctl create r_www2 --id 12 >/dev/null &&
	vsctl create r_fcgi >/dev/null || ktap_exit_fail_msg "cannot create the VSs"

paper_rules() {
	local one two j
	one=$(vsctl addrule '(fork, r_www1) -> (r_www1)') || return 1
	two=$(vsctl addrule '(accept, r_www[1|2], req=r_www[2|1]) -> (r_www[2|1])') || return 1
	want "ids printed" "$(wc -l <<<"$two")" 2 || return 1
	j=$(vsctl rules --json) || return 1
	want "rule count" "$(jget 'len(d)' <<<"$j")" 3 &&
		want "first text" "$(jget 'd[0]["text"]' <<<"$j")" "(fork, r_www1) -> (r_www1)" &&
		want "expanded" "$(jget 'd[2]["text"]' <<<"$j")" "(accept, r_www2, req=r_www1) -> (r_www1)" &&
		want "order" "$(jget 'd[0]["id"]' <<<"$j")" "$one"
}
ktap_test_result "addrule_paper_notation_and_alternatives" paper_rules

grammar_errors() {
	local before
	before=$(vsctl rules --json | jget 'len(d)')
	fails 2 "vsctl: unknown event 'forkk' (expected one of: fork, exec, socket, connect, accept, unix-connect, unix-accept, unix-recv, pipe-read, msg-recv)
  (forkk, r_www1) -> (r_www1)
   ^^^^^" vsctl addrule '(forkk, r_www1) -> (r_www1)' || return 1
	vsctl addrule '(fork, r_www3) -> (r_www1)' 2>"$ERR" >/dev/null
	grep -q "no VS named 'r_www3'" "$ERR" || { ktap_print_msg "$(cat "$ERR")"; return 1; }
	vsctl addrule '(accept, r_www[1|2], req=r_www[1|2|3]) -> (req)' 2>"$ERR" >/dev/null
	grep -q "alternatives do not pair up" "$ERR" || { ktap_print_msg "$(cat "$ERR")"; return 1; }
	want "nothing installed" "$(vsctl rules --json | jget 'len(d)')" "$before"
}
ktap_test_result "grammar_errors_point_at_the_token_and_install_nothing" grammar_errors

delrule() {
	local id
	id=$(vsctl addrule '(exec, *, path=/usr/bin/sleep) -> (r_fcgi)') || return 1
	vsctl delrule "$id" || return 1
	fails 1 "vsctl: delrule: no rule with id $id" vsctl delrule "$id"
}
ktap_test_result "delrule_and_unknown_rule" delrule

referenced_vs_stays() {
	vsctl destroy r_www1 2>"$ERR"
	[ $? = 1 ] && grep -q "rules that name it" "$ERR" || { ktap_print_msg "$(cat "$ERR")"; return 1; }
}
ktap_test_result "destroy_refused_while_a_rule_names_the_vs" referenced_vs_stays

processes() {
	local pid out
	sleep 30 &
	pid=$!
	want "moved" "$(vsctl addprocess r_fcgi $pid)" 1 &&
		want "which" "$(vsctl which $pid)" "r_fcgi $(vsctl show r_fcgi --json | jget 'd["id"]')" &&
		out=$(vsctl ps r_fcgi) && grep -qE "^ *$pid +sleep " <<<"$out" || { ktap_print_msg "ps: $out"; kill $pid; return 1; }
	kill $pid
	wait $pid 2>/dev/null
	fails 1 "vsctl: addprocess: no process with pid $pid" vsctl addprocess r_fcgi $pid
}
ktap_test_result "addprocess_which_ps" processes

fork_rule_applies() {
	# The shell's children follow the rule (fork, r_www1) -> (r_www1) installed above.
	local got
	got=$(bash -c 'vsctl addprocess r_www1 $$ >/dev/null; sh -c "vsctl which \$\$"')
	want "child of a task in r_www1" "$got" "r_www1 11"
}
ktap_test_result "fork_rule_through_vsctl" fork_rule_applies

ktap_finished
