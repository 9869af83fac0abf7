#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The declarative configuration end to end: `vsctl apply` of dist/vs.toml, applying twice and
# `vsctl export | vsctl apply -` change nothing, --dry-run prints the plan and changes
# nothing, a changed file is applied as a diff (kept VSs and rules keep their ids), a step the
# module refuses (a VS with a task in it) is rolled back to the state found, a file with errors
# changes nothing and its message names the lines; `vsctl stats --format prometheus` is read
# by Prometheus' own parser (prometheus_client); the empty configuration removes every VS and
# rule; shares that move between pools are applied in an order the module's per-pool budget
# accepts. Runs in the guest as root with vs.ko loaded.
. "$VS_KTAP_HELPERS"
. "$(dirname "$0")/vsctl_lib.sh"

ktap_print_header
ktap_set_plan 8

T=$(mktemp -d)
SLEEPER=
cleanup() {
	[ -z "$SLEEPER" ] || kill "$SLEEPER" 2>/dev/null
	wait 2>/dev/null
	vsctl apply dist/vs.default.toml >/dev/null || ktap_print_msg "cleanup: the empty configuration did not apply"
	rm -rf "$T" "$ERR"
}
trap cleanup EXIT
# Start from the empty configuration, whatever earlier tests left.
vsctl apply dist/vs.default.toml >/dev/null || ktap_exit_fail_msg "cannot apply the empty configuration"

# show_diff A B: print how two files differ, as KTAP comments.
show_diff() { diff "$1" "$2" | head -n 20 | sed 's/^/#   /'; }

# id NAME: the VSID of VS NAME.
id() { vsctl show "$1" --json | jget 'd["id"]'; }
# rule_ids: the ids of the rules, in order, on one line.
rule_ids() { vsctl rules --json | jget '" ".join(str(r["id"]) for r in d)'; }

round_trip() {
	local out
	out=$(vsctl apply dist/vs.toml) || return 1
	want "summary" "$(tail -n1 <<<"$out")" \
		"applied dist/vs.toml: VSs: 4 created, 0 updated, 0 destroyed; rules: 5 added, 0 deleted" || return 1
	want "www1's parent" "$(vsctl show www1 --json | jget 'd["parent_name"], d["id"], d["cpu_share"]["own"]')" \
		'["web", 11, 50]' || return 1
	want "fcgi's own unlimited limit" "$(vsctl show fcgi --json | jget 'd["max_procs"]["detached"], d["max_procs"]["unlimited"]')" \
		'[true, true]' || return 1
	want "rule texts" "$(vsctl rules --json | jget '" | ".join(r["text"] for r in d)')" \
		"(exec, *, path=/usr/sbin/nginx) -> (web) | (fork, www1) -> (www1) | (fork, www2) -> (www2) | (accept, fcgi, req=www1) -> (www1) | (accept, fcgi, req=www2) -> (www2)" || return 1
	local ids
	ids=$(rule_ids)
	vsctl export >"$T/e1" || return 1
	want "apply twice" "$(vsctl apply dist/vs.toml)" "nothing to do: the configuration in force is dist/vs.toml's" &&
		want "export | apply -" "$(vsctl export | vsctl apply -)" "nothing to do: the configuration in force is <stdin>'s" &&
		want "rule ids after the no-op applies" "$(rule_ids)" "$ids" || return 1
	vsctl export >"$T/e2" || return 1
	cmp -s "$T/e1" "$T/e2" || { ktap_print_msg "export changed:"; show_diff "$T/e1" "$T/e2"; return 1; }
	grep -q "^# Members (which tasks are in which VS) are not part of the configuration:$" "$T/e1" ||
		{ ktap_print_msg "export does not say that members are not exported"; return 1; }
}
ktap_test_result "apply_then_apply_again_and_export_round_trip_change_nothing" round_trip

# The example, changed: fcgi and its rules go, www2 gives up CPU share, a new VS takes some.
cat >"$T/v2.toml" <<'EOF'
rules = [
    "(exec, *, path=/usr/sbin/nginx) -> (web)",
    "(fork, www1) -> (www1)",
    "(fork, www2) -> (www2)",
]
[[vs]]
name = "web"
id = 10
cpu_share = 60
net_share = 60
[[vs]]
name = "www1"
id = 11
parent = "web"
cpu_share = 50
max_procs = 200
[[vs]]
name = "www2"
id = 12
parent = "web"
cpu_share = 30
max_procs = 200
[[vs]]
name = "api"
cpu_share = 10
EOF

# The plan, as apply prints it, from the rule ids and fcgi's id now.
expected_steps() {
	local r
	read -r -a r <<<"$(rule_ids)"
	printf '%s\n' \
		"delete rule ${r[3]}: (accept, fcgi, req=www1) -> (www1)" \
		"delete rule ${r[4]}: (accept, fcgi, req=www2) -> (www2)" \
		"destroy 'fcgi' (id $(id fcgi))" \
		"update 'www2' (id 12): cpu_share 50% -> 30%" \
		"create 'api' (a new id) under root: cpu_share 10%"
}

dry_run() {
	local want_out
	want_out="$(expected_steps)
VSs: 1 to create, 1 to update, 1 to destroy; rules: 0 to add, 2 to delete
dry run: nothing was changed"
	want "dry run" "$(vsctl apply --dry-run "$T/v2.toml")" "$want_out" || return 1
	vsctl export >"$T/e3" || return 1
	cmp -s "$T/e1" "$T/e3" || { ktap_print_msg "the dry run changed:"; show_diff "$T/e1" "$T/e3"; return 1; }
}
ktap_test_result "dry_run_prints_the_plan_and_changes_nothing" dry_run

diff_apply() {
	local steps kept_rules out
	steps=$(expected_steps)
	read -r -a kept_rules <<<"$(rule_ids)"
	out=$(vsctl apply "$T/v2.toml") || return 1
	want "steps" "$out" "$steps
applied $T/v2.toml: VSs: 1 created, 1 updated, 1 destroyed; rules: 0 added, 2 deleted" || return 1
	want "kept rules keep their ids" "$(rule_ids)" "${kept_rules[*]:0:3}" &&
		want "kept VSs keep their ids" "$(id web) $(id www1) $(id www2)" "10 11 12" &&
		want "www2's share" "$(vsctl show www2 --json | jget 'd["cpu_share"]["own"]')" 30 &&
		want "api" "$(vsctl show api --json | jget 'd["parent_name"], d["cpu_share"]["own"]')" '["root", 10]' || return 1
	want "again" "$(vsctl apply "$T/v2.toml")" "nothing to do: the configuration in force is $T/v2.toml's"
}
ktap_test_result "a_changed_file_is_applied_as_a_diff" diff_apply

# www1 and www2 go (and their fork rules), but www2 has a task: the module refuses to destroy
# it after the rules were deleted and www1 destroyed; all of that is undone.
cat >"$T/v3.toml" <<'EOF'
rules = ["(exec, *, path=/usr/sbin/nginx) -> (web)"]
[[vs]]
name = "web"
id = 10
cpu_share = 60
net_share = 60
[[vs]]
name = "api"
cpu_share = 10
EOF

refused_step_rolled_back() {
	local out rc
	sleep 300 &
	SLEEPER=$!
	want "moved" "$(vsctl addprocess www2 "$SLEEPER")" 1 || return 1
	vsctl export >"$T/before" || return 1
	out=$(vsctl apply "$T/v3.toml" 2>"$ERR")
	rc=$?
	want "exit status" "$rc" 1 || return 1
	grep -q "^vsctl: apply: step [0-9]* of 4 refused: destroy 'www2': it still has child VSs, member processes or rules that name it$" "$ERR" &&
		grep -q "^  step: destroy 'www2' (id 12)$" "$ERR" &&
		grep -qE "^rolled back: the [1-9][0-9]* steps? done before it (was|were) undone; the configuration is the one apply found" "$ERR" ||
		{ ktap_print_msg "stderr:"; sed 's/^/#   /' "$ERR"; return 1; }
	# Something was really done (and printed) before the refusal.
	grep -q "^delete rule [0-9]*: (fork, www1) -> (www1)$" <<<"$out" ||
		{ ktap_print_msg "steps done before the refusal: $out"; return 1; }
	vsctl export >"$T/after" || return 1
	cmp -s "$T/before" "$T/after" || { ktap_print_msg "not rolled back:"; show_diff "$T/before" "$T/after"; return 1; }
	want "the task stays" "$(vsctl which "$SLEEPER")" "www2 12" &&
		want "www1 is back with its id" "$(id www1)" 11
}
ktap_test_result "a_refused_step_is_rolled_back" refused_step_rolled_back
kill "$SLEEPER" 2>/dev/null
wait "$SLEEPER" 2>/dev/null
SLEEPER=

cat >"$T/bad.toml" <<'EOF'
rules = [
    "(fork, www1) -> (www1)",
    "(fork, www3) -> (www1)",
]
[[vs]]
name = "www1"
cpu_share = 150
colour = "blue"
EOF

errors_change_nothing() {
	vsctl export >"$T/before" || return 1
	fails 1 "vsctl: $T/bad.toml:3: rules: no VS named 'www3'
  (fork, www3) -> (www1)
         ^^^^
$T/bad.toml:7: vs 'www1': cpu_share: must be an integer from 1 to 100 (percent of the parent's share), not 150
$T/bad.toml:8: vs 'www1': colour: unknown key (a [[vs]] has name, id, parent, cpu_share, net_share, max_procs)
$T/bad.toml: 3 errors: nothing was changed" vsctl apply "$T/bad.toml" || return 1
	printf '[[vs]]\nname = "a"\ncpu_share = = 3\n' >"$T/syntax.toml"
	vsctl apply "$T/syntax.toml" 2>"$ERR" >/dev/null
	grep -q "^vsctl: $T/syntax.toml:3: not valid TOML: " "$ERR" ||
		{ ktap_print_msg "syntax error: $(cat "$ERR")"; return 1; }
	vsctl export >"$T/after" || return 1
	cmp -s "$T/before" "$T/after" || { ktap_print_msg "changed:"; show_diff "$T/before" "$T/after"; return 1; }
}
ktap_test_result "a_file_with_errors_changes_nothing_and_names_the_lines" errors_change_nothing

metrics() {
	# Some forks in www1 to count.
	bash -c 'vsctl addprocess www1 $$ >/dev/null && /bin/true && /bin/true' || return 1
	vsctl stats --format prometheus >"$T/metrics" || return 1
	vsctl list --json >"$T/list.json" || return 1
	vsctl stats www1 --json >"$T/www1.json" || return 1
	vsctl stats www1 --format prometheus >"$T/www1.prom" || return 1
	# Prometheus' parser, as Debian packages it for its python3 (scripts/setup.sh installs it).
	/usr/bin/python3 - "$T/metrics" "$T/list.json" "$T/www1.json" "$T/www1.prom" <<'EOF' >"$ERR" 2>&1 || { sed 's/^/#   /' "$ERR"; return 1; }
import json, sys
from prometheus_client.parser import text_string_to_metric_families

fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))
vss = json.load(open(sys.argv[2]))
www1 = json.load(open(sys.argv[3]))
assert len(fams) == 17, f"{len(fams)} families"
want = {(v["name"], str(v["id"])) for v in vss}
for f in fams:
    assert f.documentation, f"{f.name}: no HELP"
    assert f.type in ("counter", "gauge"), f"{f.name}: {f.type}"
    assert all(set(s.labels) == {"vs", "id"} for s in f.samples), f"{f.name}: labels"
    got = [(s.labels["vs"], s.labels["id"]) for s in f.samples]
    assert len(got) == len(want) and set(got) == want, f"{f.name}: {got} != {want}"
    suffix = "_total" if f.type == "counter" else ""
    assert all(s.name == f.name + suffix for s in f.samples), f"{f.name}: sample names"
value = {(f.name, s.labels["vs"]): s.value for f in fams for s in f.samples}
s = www1["stats"]
assert s["forks"] >= 1, s
assert value[("vs_forks", "www1")] == s["forks"], (value[("vs_forks", "www1")], s["forks"])
assert value[("vs_execs", "www1")] == s["execs"]
assert value[("vs_processes", "www1")] == s["nr_procs"]
one = list(text_string_to_metric_families(open(sys.argv[4]).read()))
assert len(one) == 17 and all(len(f.samples) == 1 and f.samples[0].labels == {"vs": "www1", "id": "11"} for f in one)
print(f"{len(fams)} families, {sum(len(f.samples) for f in fams)} series")
EOF
	ktap_print_msg "prometheus_client: $(cat "$ERR")"
}
ktap_test_result "stats_prometheus_is_read_by_prometheus_client" metrics

empty_configuration() {
	local out
	out=$(vsctl apply dist/vs.default.toml) || return 1
	grep -q "^applied dist/vs.default.toml: VSs: 0 created, 0 updated, 4 destroyed; rules: 0 added, 3 deleted$" <<<"$out" ||
		{ ktap_print_msg "$out"; return 1; }
	want "VSs left" "$(vsctl list --json | jget 'len(d)')" 1 &&
		want "rules left" "$(vsctl rules --json | jget 'len(d)')" 0
}
ktap_test_result "the_empty_configuration_removes_every_vs_and_rule" empty_configuration

# v keeps root's CPU share, so y, z and foo (below v) draw 100 % from root's pool. Then v
# takes 10 % of root's (y and z draw from v's pool from then on), and foo moves under root
# with 60 %, so it is replaced, with a child: foo's 60 fits in root's pool only once v has its
# own share. The usual order (updates after creates) would be refused; apply orders the
# steps so that each one fits.
cat >"$T/pools1.toml" <<'EOF'
[[vs]]
name = "v"
[[vs]]
name = "y"
parent = "v"
cpu_share = 50
[[vs]]
name = "z"
parent = "v"
cpu_share = 30
[[vs]]
name = "foo"
parent = "v"
cpu_share = 20
EOF
cat >"$T/pools2.toml" <<'EOF'
[[vs]]
name = "v"
cpu_share = 10
[[vs]]
name = "y"
parent = "v"
cpu_share = 50
[[vs]]
name = "z"
parent = "v"
cpu_share = 30
[[vs]]
name = "foo"
cpu_share = 60
[[vs]]
name = "bar"
parent = "foo"
cpu_share = 10
EOF

shares_between_pools() {
	local out v foo
	vsctl apply "$T/pools1.toml" >/dev/null || return 1
	v=$(id v) foo=$(id foo)
	# The module's budget first hand: root's pool is full while v draws from it.
	fails 1 "vsctl: create 't_x': parent root has only 0% cpu share left" vsctl create t_x --cpu-share 60 ||
		return 1
	out=$(vsctl apply "$T/pools2.toml") || return 1
	want "steps" "$out" "destroy 'foo' (id $foo)
update 'v' (id $v): cpu_share inherited -> 10%
create 'foo' (a new id) under root: cpu_share 60%
create 'bar' (a new id) under 'foo': cpu_share 10%
applied $T/pools2.toml: VSs: 2 created, 1 updated, 1 destroyed; rules: 0 added, 0 deleted" || return 1
	want "v, foo, bar" "$(for n in v foo bar; do vsctl show $n --json | jget 'd["parent_name"], d["cpu_share"]["own"]'; done | tr -d '\n')" \
		'["root", 10]["root", 60]["foo", 10]' &&
		want "again" "$(vsctl apply "$T/pools2.toml")" "nothing to do: the configuration in force is $T/pools2.toml's"
}
ktap_test_result "shares_moving_between_pools_are_applied_in_an_order_that_fits" shares_between_pools

ktap_finished
