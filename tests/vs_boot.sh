#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The boot path as installed: `make install` into a staging root for the guest's kernel, then
# the commands of the installed vs.service run as systemd would run them (the guest has no
# systemd as PID 1), with the staging root standing for / (modprobe -d, the installed vsctl
# and /etc/vs/vs.toml): start loads vs.ko through modprobe (depmod's work) and applies the
# installed empty configuration; reload applies an edited one as a diff; a configuration with
# an error fails the reload and changes nothing. Runs in the guest with vs.ko loaded
# ($VS_KO); unloads it, and leaves the installed copy (the same file) loaded.
. "$VS_KTAP_HELPERS"
. "$(dirname "$0")/vsctl_lib.sh"

ktap_print_header
ktap_set_plan 4

R=$(mktemp -d)
trap 'rm -rf "$R" "$ERR"; [ -e /dev/vs ] || insmod "$VS_KO"' EXIT
KVER=$(uname -r)
UNIT=$R/usr/local/lib/systemd/system/vs.service

installed() {
	make -s install DESTDIR="$R" KVER="$KVER" VS_KO="$VS_KO" VSCTL="$VS_ROOT/target/release/vsctl" >"$ERR" 2>&1 ||
		{ sed 's/^/#   /' "$ERR"; return 1; }
	[ -f "$UNIT" ] && [ -x "$R/usr/local/sbin/vsctl" ] && [ -f "$R/lib/modules/$KVER/extra/vs.ko" ] ||
		{ ktap_print_msg "files missing under $R"; return 1; }
}
ktap_test_result "make_install_for_the_running_kernel" installed

# unit_cmd KEY: the command of line KEY= of the installed unit, rewritten for the staging
# root: modprobe looks in it, paths under / point into it.
unit_cmd() {
	sed -n "s/^$1=//p" "$UNIT" |
		sed -e "s|^/sbin/modprobe |modprobe -d $R |" -e "s| /etc/| $R/etc/|g" -e "s|^/usr/local/|$R/usr/local/|"
}

start() {
	local pre cmd
	pre=$(unit_cmd ExecStartPre) cmd=$(unit_cmd ExecStart)
	want "ExecStartPre" "$pre" "modprobe -d $R vs" &&
		want "ExecStart" "$cmd" "$R/usr/local/sbin/vsctl apply $R/etc/vs/vs.toml" || return 1
	rmmod vs || { ktap_print_msg "cannot unload vs"; return 1; }
	$pre || { ktap_print_msg "ExecStartPre failed"; return 1; }
	[ -c /dev/vs ] && grep -q '^vs ' /proc/modules || { ktap_print_msg "modprobe did not load vs"; return 1; }
	want "ExecStart" "$($cmd)" "nothing to do: the configuration in force is $R/etc/vs/vs.toml's" &&
		want "VSs" "$(vsctl list --json | jget 'len(d)')" 1
}
ktap_test_result "start_loads_the_module_with_modprobe_and_applies_the_configuration" start

reload() {
	local cmd out
	cmd=$(unit_cmd ExecReload)
	cp dist/vs.toml "$R/etc/vs/vs.toml"
	out=$($cmd) || return 1
	want "reload" "$(tail -n1 <<<"$out")" \
		"applied $R/etc/vs/vs.toml: VSs: 4 created, 0 updated, 0 destroyed; rules: 5 added, 0 deleted" &&
		want "again" "$($cmd)" "nothing to do: the configuration in force is $R/etc/vs/vs.toml's"
}
ktap_test_result "reload_applies_the_edited_configuration" reload

bad_reload() {
	local cmd before
	cmd=$(unit_cmd ExecReload)
	before=$(vsctl export)
	sed -i 's/^cpu_share = 60 .*/cpu_share = 0/' "$R/etc/vs/vs.toml"
	$cmd >/dev/null 2>"$ERR" && { ktap_print_msg "reload of a bad file succeeded"; return 1; }
	grep -q "^vsctl: $R/etc/vs/vs.toml:[0-9]*: vs 'web': cpu_share: must be an integer from 1 to 100" "$ERR" ||
		{ sed 's/^/#   /' "$ERR"; return 1; }
	want "state after a failed reload" "$(vsctl export)" "$before" || return 1
	cp dist/vs.default.toml "$R/etc/vs/vs.toml"
	$cmd >/dev/null && want "VSs after the empty configuration" "$(vsctl list --json | jget 'len(d)')" 1
}
ktap_test_result "a_bad_configuration_fails_the_reload_and_changes_nothing" bad_reload

ktap_finished
