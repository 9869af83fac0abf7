# SPDX-License-Identifier: GPL-2.0
# Shared helpers of the vsctl shell tests (sourced after ktap_helpers.sh).
# shellcheck shell=bash

# The interpreter itself rather than a pyenv shim (a shell script that is slow under TCG).
PY=$(pyenv which python3 2>/dev/null) || PY=python3
ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT

# jget EXPR: evaluate the Python expression EXPR on the JSON document on stdin (bound to d);
# strings print bare, everything else as JSON (true, null, 30).
jget() {
	"$PY" -c 'import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v))' "$1"
}

# want WHAT GOT EXPECTED: compare, and say what differs.
want() {
	[ "$2" = "$3" ] && return 0
	ktap_print_msg "$1: got '$2', expected '$3'"
	return 1
}

# fails RC MESSAGE CMD...: CMD must exit with RC, print MESSAGE (exactly) on stderr and
# nothing on stdout.
fails() {
	local want_rc=$1 want_msg=$2 out err rc
	shift 2
	out=$("$@" 2>"$ERR")
	rc=$?
	err=$(<"$ERR")
	want "exit status of '$*'" "$rc" "$want_rc" &&
		want "stderr of '$*'" "$err" "$want_msg" &&
		want "stdout of '$*'" "$out" ""
}
