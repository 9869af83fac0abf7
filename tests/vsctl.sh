#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# vsctl end to end: create/destroy/set/show/list/stats/version, text and --json, and the
# error messages and exit statuses a user sees. Runs in the guest as root with vs.ko loaded
# and vsctl on PATH. Every test removes the VSs it made (all are named t_*). The rule and
# process commands (addrule, rules, addprocess, which, ps) are in vsctl_rules.sh.
. "$VS_KTAP_HELPERS"

ktap_print_header
ktap_set_plan 14

. "$(dirname "$0")/vsctl_lib.sh"

# These two run often: plain text tools, no Python start-up.
nr_vs() { vsctl version | awk '$1 == "VSs" { print $2 }'; }

# Destroy every t_* VS, children first (the list has parents before children; a VS object's
# own "name" is the only one indented by exactly four blanks).
cleanup() {
	local n
	for n in $(vsctl list --json | sed -nE 's/^    "name": "(t_[^"]*)",?$/\1/p' | tac); do
		vsctl destroy "$n" || ktap_print_msg "cleanup: cannot destroy $n"
	done
}

# t NAME FUNCTION: run one test, then clean up whatever it left.
t() {
	ktap_test_result "$1" "$2"
	cleanup
}

cleanup
base=$(nr_vs)

version() {
	local j
	vsctl version | grep -qE '^abi +2 \(vsctl speaks 2\)$' || { ktap_print_msg "version text"; return 1; }
	j=$(vsctl version --json) || return 1
	want abi "$(jget 'd["abi"]' <<<"$j")" 2 &&
		want vsctl_abi "$(jget 'd["vsctl_abi"]' <<<"$j")" 2 &&
		want max_vs "$(jget 'd["max_vs"]' <<<"$j")" 4096 &&
		want name_len "$(jget 'd["name_len"]' <<<"$j")" 32 &&
		want nr_vs "$(jget 'd["nr_vs"]' <<<"$j")" "$base"
}
t "version_text_and_json" version

create_list_destroy() {
	local id id7 kid list
	id=$(vsctl create t_web) || return 1
	[ "$id" -ge 64 ] || { ktap_print_msg "auto id $id is not local"; return 1; }
	id7=$(vsctl create t_g7 --id 7) || return 1
	want "explicit id" "$id7" 7 || return 1
	kid=$(vsctl create t_kid --parent t_web) || return 1
	want "nr_vs after 3 creates" "$(nr_vs)" $((base + 3)) || return 1
	# Text: the child is drawn under its parent (the list is drawn with box characters).
	list=$(vsctl list) || return 1
	grep -qE "^(├|└)─ t_web +$id " <<<"$list" &&
		grep -qE "^(│| )  └─ t_kid +$kid " <<<"$list" ||
		{ ktap_print_msg "t_web/t_kid not drawn as a tree:"; sed 's/^/# /' <<<"$list"; return 1; }
	# JSON: each with its parent's name and depth, parents before children.
	want "list --json" "$(vsctl list --json | jget '[sorted((v["name"], v["parent_name"], v["depth"]) for v in d if v["name"].startswith("t_")), [v["name"] for v in d].index("t_web") < [v["name"] for v in d].index("t_kid")]')" \
		'[[["t_g7", "root", 1], ["t_kid", "t_web", 2], ["t_web", "root", 1]], true]' || return 1
	want "show by id" "$(vsctl show "$kid" --json | jget 'd["name"]')" t_kid || return 1
	want "children of t_web" "$(vsctl show t_web --json | jget 'd["children"]')" 1 || return 1
	vsctl show t_kid | grep -qx "parent        t_web (id $id)" || { ktap_print_msg "show text"; return 1; }
	# Destroy by name and by id: nothing printed, gone afterwards.
	want "destroy output" "$(vsctl destroy t_kid)" "" || return 1
	vsctl destroy 7 || return 1
	vsctl destroy t_web || return 1
	want "nr_vs after destroy" "$(nr_vs)" "$base" &&
		fails 1 "vsctl: no VS named 't_web'" vsctl show t_web
}
t "create_list_show_destroy" create_list_destroy

values_and_inheritance() {
	local a b
	vsctl create t_a --cpu-share 30 --net-share 20% --max-procs 50 >/dev/null || return 1
	vsctl create t_b --parent t_a >/dev/null || return 1
	a=$(vsctl show t_a --json) && b=$(vsctl show t_b --json) || return 1
	want "t_a cpu" "$(jget '[d["cpu_share"][k] for k in ("own", "detached", "effective")]' <<<"$a")" '[30, true, 30]' &&
		want "t_a net" "$(jget 'd["net_share"]["own"]' <<<"$a")" 20 &&
		want "t_a procs" "$(jget '[d["max_procs"]["effective"], d["max_procs"]["unlimited"]]' <<<"$a")" '[50, false]' &&
		want "t_a machine" "$(jget 'd["cpu_share"]["machine_percent"]' <<<"$a")" 30.0 &&
		want "t_b cpu" "$(jget '[d["cpu_share"][k] for k in ("own", "detached", "effective", "source_name")]' <<<"$b")" '[null, false, 30, "t_a"]' &&
		want "t_b procs" "$(jget 'd["max_procs"]["source_name"]' <<<"$b")" t_a || return 1
	vsctl show t_a | grep -qx "cpu share     30%, own value; 30% of the machine" &&
		vsctl show t_b | grep -qx "cpu share     30%, inherited from t_a (id $(jget 'd["id"]' <<<"$a")); 30% of the machine" ||
		{ ktap_print_msg "show text:"; vsctl show t_b | sed 's/^/# /'; return 1; }
	# In the list, inherited values are in parentheses.
	want "list row of t_b" "$(vsctl list | grep -E 't_b ' | awk '{print $(NF-3), $(NF-2), $(NF-1), $NF}')" "(30%) (20%) (50) 0"
}
t "create_with_values_child_inherits" values_and_inheritance

set_attach_detach() {
	local b
	vsctl create t_a --cpu-share 30 --net-share 20 >/dev/null &&
		vsctl create t_b --parent t_a >/dev/null || return 1
	want "set output" "$(vsctl set t_b --cpu-share 50)" "" || return 1
	want "own cpu" "$(vsctl show t_b --json | jget '[d["cpu_share"]["own"], d["cpu_share"]["detached"]]')" '[50, true]' || return 1
	vsctl set t_b --attach cpu --detach net || return 1
	b=$(vsctl show t_b --json)
	want "attached cpu" "$(jget '[d["cpu_share"]["detached"], d["cpu_share"]["effective"], d["cpu_share"]["source_name"]]' <<<"$b")" '[false, 30, "t_a"]' &&
		want "detached net" "$(jget '[d["net_share"]["own"], d["net_share"]["detached"]]' <<<"$b")" '[20, true]' || return 1
	vsctl set t_b --max-procs 7 && vsctl set t_a --max-procs unlimited || return 1
	want "procs" "$(vsctl show t_b --json | jget '[d["max_procs"]["effective"], d["max_procs"]["detached"]]')" '[7, true]' &&
		want "unlimited" "$(vsctl show t_a --json | jget 'd["max_procs"]["unlimited"]')" true &&
		fails 2 "vsctl: set: nothing to change (give --cpu-share, --net-share, --max-procs, --detach or --attach)" vsctl set t_b &&
		fails 2 "vsctl: --attach cpu conflicts with --detach cpu" vsctl set t_b --attach cpu --detach cpu
}
t "set_values_attach_detach" set_attach_detach

stats() {
	local id
	id=$(vsctl create t_s) || return 1
	want "stats --json of one" "$(vsctl stats t_s --json | jget '[d["id"], d["name"], len(d["stats"]), d["stats"]["nr_procs"]]')" "[$id, \"t_s\", 17, 0]" &&
		want "stats --json of all" "$(vsctl stats --json | jget '[len(d) - '"$base"', d[0]["name"], "forks" in d[-1]["stats"]]')" '[1, "root", true]' &&
		vsctl stats | head -1 | grep -qE '^NAME +ID +PROCS +CPU_TIME +FORKS ' &&
		vsctl stats | grep -qE "^t_s +$id +0 +0\.000s " &&
		vsctl stats t_s | grep -qx "name          t_s (id $id)" &&
		vsctl stats t_s | grep -qE "^tags refused +0$"
}
t "stats_text_and_json" stats

missing_vs() {
	fails 1 "vsctl: no VS named 't_none'" vsctl show t_none &&
		fails 1 "vsctl: no VS with id 999999" vsctl destroy 999999 &&
		fails 1 "vsctl: no VS named 't_none'" vsctl set t_none --cpu-share 5 &&
		fails 1 "vsctl: no VS named 't_none'" vsctl stats t_none --json &&
		fails 1 "vsctl: no VS named 't_none'" vsctl create t_x --parent t_none &&
		want "nothing created" "$(nr_vs)" "$base"
}
t "missing_vs_exit_1" missing_vs

duplicate() {
	vsctl create t_dup --id 9 >/dev/null || return 1
	fails 1 "vsctl: create 't_dup': a VS named 't_dup' already exists" vsctl create t_dup &&
		fails 1 "vsctl: create 't_other': a VS with id 9 already exists" vsctl create t_other --id 9 &&
		want "nr_vs" "$(nr_vs)" $((base + 1))
}
t "duplicate_name_or_id_exit_1" duplicate

permission() {
	local nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	vsctl create t_mine >/dev/null || return 1
	# Reading is open to everyone.
	want "list as nobody" "$("${nobody[@]}" vsctl list --json | jget '"t_mine" in [v["name"] for v in d]')" true || return 1
	fails 1 "vsctl: create 't_x': permission denied: needs CAP_SYS_ADMIN" "${nobody[@]}" vsctl create t_x &&
		fails 1 "vsctl: destroy 't_mine': permission denied: needs CAP_SYS_ADMIN" "${nobody[@]}" vsctl destroy t_mine &&
		fails 1 "vsctl: set 't_mine': permission denied: needs CAP_SYS_ADMIN" "${nobody[@]}" vsctl set t_mine --max-procs 3 &&
		want "nothing changed" "$(nr_vs) $(vsctl show t_mine --json | jget 'd["max_procs"]["detached"]')" "$((base + 1)) false"
}
if command -v setpriv >/dev/null; then
	t "mutations_as_nobody_permission_denied" permission
else
	ktap_test_skip "mutations_as_nobody_permission_denied (no setpriv)"
fi

share_budget() {
	# t_p keeps root's shares: its children draw from root's pool.
	vsctl create t_p >/dev/null &&
		vsctl create t_c1 --parent t_p --cpu-share 60 >/dev/null &&
		vsctl create t_c3 --parent t_p --net-share 70 >/dev/null || return 1
	fails 1 "vsctl: create 't_c2': parent 't_p' draws its cpu share from root, which has only 40% left" vsctl create t_c2 --parent t_p --cpu-share 50 &&
		fails 1 "vsctl: create 't_c2': parent 't_p' draws its net share from root, which has only 30% left" vsctl create t_c2 --parent t_p --net-share 31 &&
		fails 1 "vsctl: set 't_c3': parent 't_p' draws its cpu share from root, which has only 40% left" vsctl set t_c3 --cpu-share 41 &&
		fails 1 "vsctl: create 't_r': parent root has only 40% cpu share left" vsctl create t_r --cpu-share 41 || return 1
	# Exactly the rest fits.
	vsctl create t_c2 --parent t_p --cpu-share 40 >/dev/null &&
		want "t_c2 cpu" "$(vsctl show t_c2 --json | jget 'd["cpu_share"]["own"]')" 40 || return 1
	# With a share of its own, t_p is the pool its children draw from; giving it up again
	# would put their 100 beside its sibling's.
	vsctl destroy t_c2 >/dev/null && vsctl set t_p --cpu-share 50 >/dev/null &&
		vsctl create t_s --cpu-share 50 >/dev/null &&
		fails 1 "vsctl: set 't_p': without its own cpu share, the shares drawn from it would go to root's pool, which would then hold 110% (at most 100%)" vsctl set t_p --attach cpu &&
		vsctl destroy t_s >/dev/null
}
t "share_budget_of_the_pool" share_budget

destroy_refused() {
	vsctl create t_p >/dev/null && vsctl create t_c --parent t_p >/dev/null || return 1
	fails 1 "vsctl: destroy root: the root VS cannot be destroyed" vsctl destroy root &&
		fails 1 "vsctl: destroy root: the root VS cannot be destroyed" vsctl destroy 0 &&
		fails 1 "vsctl: destroy 't_p': it still has child VSs, member processes or rules that name it" vsctl destroy t_p &&
		want "t_p still there" "$(vsctl show t_p --json | jget 'd["children"]')" 1
}
t "destroy_root_or_parent_refused" destroy_refused

invalid_name() {
	local long
	long=$(printf 'x%.0s' {1..32})
	fails 2 "vsctl: invalid name '1abc': names are 1-31 characters [A-Za-z0-9_.-], starting with a letter or '_'" vsctl create 1abc &&
		fails 2 "vsctl: invalid name 't x': names are 1-31 characters [A-Za-z0-9_.-], starting with a letter or '_'" vsctl create 't x' &&
		fails 2 "vsctl: invalid name '$long': names are 1-31 characters [A-Za-z0-9_.-], starting with a letter or '_'" vsctl create "$long" &&
		want "31 characters are fine" "$(vsctl create "t_$(printf 'y%.0s' {1..29})" >/dev/null && echo ok)" ok &&
		want "nr_vs" "$(nr_vs)" $((base + 1))
}
t "invalid_name_exit_2" invalid_name

invalid_values() {
	fails 2 "vsctl: invalid --cpu-share '0': share must be 1..100" vsctl create t_v --cpu-share 0 &&
		fails 2 "vsctl: invalid --net-share '101': share must be 1..100" vsctl create t_v --net-share 101 &&
		fails 2 "vsctl: invalid --max-procs 'lots': must be 1..4294967295 or 'unlimited'" vsctl create t_v --max-procs lots &&
		fails 2 "vsctl: invalid --id '0': id must be 1..63 (global) or 64..2147483647 (local)" vsctl create t_v --id 0 &&
		want "nr_vs" "$(nr_vs)" "$base" || return 1
	# clap's own usage errors: exit 2 too.
	vsctl frobnicate >/dev/null 2>&1
	want "unknown command" $? 2 || return 1
	vsctl create >/dev/null 2>&1
	want "missing name" $? 2
}
t "invalid_values_exit_2" invalid_values

root_rules() {
	# The root always has the whole machine and no process limit: the module refuses any change.
	local m="vsctl: set root: the root VS cannot be changed: it always has 100% cpu and net share and no process limit"
	fails 1 "$m" vsctl set root --cpu-share 50 &&
		fails 1 "$m" vsctl set 0 --max-procs 100 &&
		fails 1 "$m" vsctl set root --attach net &&
		want "root unchanged" "$(vsctl show 0 --json | jget '[d["cpu_share"]["own"], d["max_procs"]["unlimited"], d["parent"], d["depth"]]')" '[100, true, null, 0]' &&
		vsctl show root | grep -qx "parent        -"
}
t "root_vs_is_special" root_rules

left_nothing() {
	want "nr_vs at the end" "$(nr_vs)" "$base" &&
		want "t_* VSs at the end" "$(vsctl list --json | jget '[v["name"] for v in d if v["name"].startswith("t_")]')" '[]'
}
t "every_test_cleaned_up" left_nothing

ktap_finished
