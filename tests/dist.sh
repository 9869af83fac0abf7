#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host-side tests of what vs ships for real hosts (run by scripts/check.sh on the host, after
# the build, never in QEMU and never loading anything): the man page renders, the completions
# load in bash, zsh and fish, vs.service passes `systemd-analyze verify`, `make install` and
# `make uninstall` into a staging root, and Debian's dkms builds and installs vs.ko against the
# cached test kernel's build tree (into a scratch DKMS tree, never /lib/modules or /var/lib/dkms).
. "$(dirname "$0")/../scripts/common.sh"
. "$VS_KTAP_HELPERS"
cd "$VS_ROOT" || exit 1

KDIR=$(bash scripts/build-kernel.sh --dir-only)
KVER=$(cat "$KDIR/include/config/kernel.release" 2>/dev/null)
VS_KO=$(module_dir)/vs.ko
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/out ERR=$TMP/err

ktap_print_header
ktap_set_plan 6

# fail_with MESSAGE [FILE]: print MESSAGE (and FILE's tail) as KTAP comments, fail.
fail_with() {
	ktap_print_msg "$1"
	[ -z "${2:-}" ] || tail -n 20 "$2" | sed 's/^/#   /'
	return 1
}

man_page_renders() {
	(cd dist && MANWIDTH=80 man ./vsctl.8) >"$OUT" 2>"$ERR" || fail_with "man ./vsctl.8 failed" "$ERR" || return 1
	[ ! -s "$ERR" ] || fail_with "man ./vsctl.8 complained" "$ERR" || return 1
	grep -q '^ *vsctl apply \[-n|--dry-run\]' "$OUT" && grep -q '^CONFIGURATION FILE' "$OUT" &&
		grep -q '^METRICS' "$OUT" || fail_with "the rendered page lacks apply, the file format or metrics" "$OUT" || return 1
	groff -man -ww -z dist/vsctl.8 2>"$ERR" && [ ! -s "$ERR" ] || fail_with "groff warnings" "$ERR"
}
ktap_test_result "man_page_renders" man_page_renders

bash_completion_completes() {
	local got
	got=$(bash -c 'source dist/completions/vsctl.bash
		COMP_WORDS=(vsctl ap); COMP_CWORD=1; _vsctl vsctl ap vsctl; echo "${COMPREPLY[*]}"
		COMP_WORDS=(vsctl stats --format p); COMP_CWORD=3; _vsctl vsctl p --format; echo "${COMPREPLY[*]}"')
	[ "$got" = $'apply\nprometheus' ] || fail_with "bash completed: $got"
}
ktap_test_result "bash_completion_completes_commands_and_formats" bash_completion_completes

zsh_and_fish_completions_load() {
	local z f
	z=$(zsh -fc "fpath=($VS_ROOT/dist/completions \$fpath); autoload -U compinit; compinit -u -D
		print -r -- \${_comps[vsctl]}; autoload +X _vsctl && print loaded" 2>&1)
	[ "$z" = $'_vsctl\nloaded' ] || fail_with "zsh: $z" || return 1
	f=$(fish -c 'source dist/completions/vsctl.fish; complete -C "vsctl exp"; complete -C "vsctl stats --format pro"' 2>&1)
	grep -q '^export' <<<"$f" && grep -q '^prometheus' <<<"$f" || fail_with "fish completed: $f"
}
ktap_test_result "zsh_and_fish_completions_load_and_complete" zsh_and_fish_completions_load

# `make install` into a staging root: every file in place, vs.ko registered by depmod (and
# modprobe finds it there), vs.service found by systemd in that root and verified without a
# word (its ExecStart names the installed vsctl, its Documentation= the installed man page);
# then `make uninstall` takes everything away but /etc/vs/vs.toml.
install_and_uninstall() {
	local r=$TMP/root f
	local files=(/lib/modules/$KVER/extra/vs.ko /usr/local/sbin/vsctl
		/usr/local/share/man/man8/vsctl.8 /usr/local/share/bash-completion/completions/vsctl
		/usr/local/share/zsh/site-functions/_vsctl /usr/local/share/fish/vendor_completions.d/vsctl.fish
		/usr/local/lib/systemd/system/vs.service /usr/local/share/doc/vs/vs.toml.example
		/usr/local/share/doc/vs/config.md /usr/local/share/doc/vs/modules-load.d/vs.conf
		/usr/local/share/doc/vs/modprobe.d/vs.conf /etc/vs/vs.toml)
	make -s install DESTDIR="$r" KVER="$KVER" VS_KO="$VS_KO" >"$OUT" 2>&1 ||
		fail_with "make install failed" "$OUT" || return 1
	for f in "${files[@]}"; do
		[ -f "$r$f" ] || fail_with "make install did not install $f" "$OUT" || return 1
	done
	cmp -s "$r/usr/local/sbin/vsctl" target/release/vsctl && cmp -s "$VS_KO" "$r/lib/modules/$KVER/extra/vs.ko" ||
		fail_with "installed vsctl or vs.ko differ from the built ones" || return 1
	grep -qx 'extra/vs.ko:' "$r/lib/modules/$KVER/modules.dep" ||
		fail_with "depmod did not register vs.ko" "$r/lib/modules/$KVER/modules.dep" || return 1
	modprobe -d "$r" -S "$KVER" --show-depends vs >"$OUT" 2>&1 && grep -q "extra/vs.ko" "$OUT" ||
		fail_with "modprobe does not find vs in the staged tree" "$OUT" || return 1
	cmp -s dist/vs.service "$r/usr/local/lib/systemd/system/vs.service" ||
		fail_with "the unit installed for PREFIX=/usr/local is not dist/vs.service" || return 1
	# The unit runs /sbin/modprobe, which any target system has: so must the staging root.
	mkdir -p "$r/sbin" && cp -L "$(command -v modprobe)" "$r/sbin/modprobe"
	MANPATH=$r/usr/local/share/man systemd-analyze verify --root="$r" vs.service >"$OUT" 2>&1 ||
		fail_with "systemd-analyze verify vs.service failed" "$OUT" || return 1
	[ ! -s "$OUT" ] || fail_with "systemd-analyze verify warned" "$OUT" || return 1
	# The default configuration is installed once; an edited one is never overwritten.
	cmp -s dist/vs.default.toml "$r/etc/vs/vs.toml" || fail_with "/etc/vs/vs.toml is not the default" || return 1
	echo "# edited" >>"$r/etc/vs/vs.toml"
	make -s install DESTDIR="$r" KVER="$KVER" VS_KO="$VS_KO" >"$OUT" 2>&1 &&
		grep -q '^# edited$' "$r/etc/vs/vs.toml" || fail_with "a second install overwrote /etc/vs/vs.toml" "$OUT" || return 1
	make -s uninstall DESTDIR="$r" KVER="$KVER" >"$OUT" 2>&1 || fail_with "make uninstall failed" "$OUT" || return 1
	for f in "${files[@]}"; do
		[ "$f" = /etc/vs/vs.toml ] && continue
		[ ! -e "$r$f" ] || fail_with "make uninstall left $f" || return 1
	done
	[ -f "$r/etc/vs/vs.toml" ] || fail_with "make uninstall removed the configuration" || return 1
	! grep -q 'vs.ko' "$r/lib/modules/$KVER/modules.dep" || fail_with "depmod still lists vs.ko"
}
ktap_test_result "make_install_verify_unit_and_uninstall_in_a_staging_root" install_and_uninstall

unit_fails_verification_when_broken() {
	# The check above is only worth something if verify notices a broken unit.
	local r=$TMP/broken
	mkdir -p "$r/usr/local/lib/systemd/system"
	sed 's|^ExecStart=/usr/local/sbin/vsctl|ExecStart=/nonexistent/vsctl|' dist/vs.service \
		>"$r/usr/local/lib/systemd/system/vs.service"
	! systemd-analyze verify --root="$r" vs.service >"$OUT" 2>&1 && grep -q 'not executable' "$OUT" ||
		fail_with "verify passed a unit whose ExecStart does not exist" "$OUT"
}
ktap_test_result "systemd_analyze_verify_catches_a_broken_unit" unit_fails_verification_when_broken

# DKMS as a kernel upgrade runs it: add, build against the kernel's build tree, install; here
# with scratch DKMS, source and install trees, the cached test kernel as the kernel, and our
# own depmod on the scratch tree (dkms's would run on the system's /lib/modules).
dkms_builds_against_the_cached_kernel() {
	local d=$TMP/dkms src=$TMP/usr/src inst=$TMP/dkmsroot/lib/modules ko
	mkdir -p "$d" "$inst/$KVER"
	make -s dkms-source DESTDIR="$TMP" >"$OUT" 2>&1 || fail_with "make dkms-source failed" "$OUT" || return 1
	local dkms=(dkms --dkmstree "$d" --sourcetree "$src" --installtree "$inst")
	PATH=$(kbuild_path) "${dkms[@]}" add -m vs -v "$VERSION" >"$OUT" 2>&1 ||
		fail_with "dkms add failed" "$OUT" || return 1
	PATH=$(kbuild_path) "${dkms[@]}" build -m vs -v "$VERSION" -k "$KVER" --kernelsourcedir "$KDIR" >"$OUT" 2>&1 ||
		fail_with "dkms build failed" "$d/vs/$VERSION/$KVER/x86_64/log/make.log" || return 1
	ko=$d/vs/$VERSION/$KVER/x86_64/module/vs.ko
	[ -f "$ko" ] && [ "$(modinfo -F vermagic "$ko" | awk '{print $1}')" = "$KVER" ] &&
		[ "$(modinfo -F name "$ko")" = vs ] || fail_with "no vs.ko for $KVER from dkms build" "$OUT" || return 1
	PATH=$(kbuild_path) "${dkms[@]}" install --no-depmod -m vs -v "$VERSION" -k "$KVER" --kernelsourcedir "$KDIR" >"$OUT" 2>&1 ||
		fail_with "dkms install failed" "$OUT" || return 1
	[ -f "$inst/$KVER/updates/dkms/vs.ko" ] || fail_with "dkms install put no vs.ko in updates/dkms" "$OUT" || return 1
	depmod -b "$TMP/dkmsroot" "$KVER" 2>/dev/null && grep -qx 'updates/dkms/vs.ko:' "$inst/$KVER/modules.dep" ||
		fail_with "depmod does not see the dkms module" || return 1
	"${dkms[@]}" status -m vs >"$OUT" 2>&1 && grep -q "vs/$VERSION, $KVER, x86_64: installed" "$OUT" ||
		fail_with "dkms status" "$OUT" || return 1
	"${dkms[@]}" remove -m vs -v "$VERSION" --all --no-depmod >"$OUT" 2>&1 && [ ! -e "$inst/$KVER/updates/dkms/vs.ko" ] ||
		fail_with "dkms remove" "$OUT" || return 1
	[ ! -e "/var/lib/dkms/vs" ] && [ ! -e "/lib/modules/$KVER/updates/dkms/vs.ko" ] ||
		fail_with "the test touched the system's DKMS or module trees"
}
ktap_test_result "dkms_builds_and_installs_against_the_cached_kernel_build_tree" dkms_builds_against_the_cached_kernel

ktap_finished
