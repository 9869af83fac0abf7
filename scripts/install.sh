#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install vs on a real host, or take it away: the Makefile's install targets.
#
#   install         vs.ko into /lib/modules/$KVER/extra (then depmod), vsctl into $SBINDIR,
#                   vsctl.8, the bash/zsh/fish completions, vs.service, the examples and
#                   docs, and /etc/vs/vs.toml (an empty configuration) if there is none
#   uninstall       remove all of that but /etc/vs/vs.toml (your configuration), then depmod
#   dkms-source     copy the module's sources and dkms.conf to $DESTDIR/usr/src/vs-$VERSION
#   dkms-install    dkms-source, then `dkms install` (builds for the running kernel, and again
#                   on every kernel upgrade)
#   dkms-uninstall  `dkms remove --all`, and the sources
#
# Settings (environment, or make variables): DESTDIR (a staging root), PREFIX (/usr/local),
# SBINDIR, DATADIR, MANDIR, DOCDIR, UNITDIR, SYSCONFDIR (/etc), KVER (uname -r), KDIR (the
# kernel build tree vs.ko is built against: /lib/modules/$KVER/build), VS_KO (install this
# vs.ko instead of building one), VSCTL (install this vsctl instead of target/release/vsctl).
# Nothing here loads the module: `modprobe vs` or `systemctl enable --now vs` does.
set -euo pipefail
. "$(dirname "$0")/common.sh"
cd "$VS_ROOT"

action=${1:-}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SBINDIR=${SBINDIR:-$PREFIX/sbin}
DATADIR=${DATADIR:-$PREFIX/share}
MANDIR=${MANDIR:-$DATADIR/man}
DOCDIR=${DOCDIR:-$DATADIR/doc/vs}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
SYSCONFDIR=${SYSCONFDIR:-/etc}
KVER=${KVER:-$(uname -r)}
KDIR=${KDIR:-/lib/modules/$KVER/build}
MODULE=/lib/modules/$KVER/extra/vs.ko
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
SRCDIR=/usr/src/vs-$VERSION

# What install puts where: source (relative to the checkout), destination, mode. The module,
# vsctl and the unit (whose paths follow SBINDIR) are handled apart.
FILES=(
	"dist/vsctl.8 $MANDIR/man8/vsctl.8 0644"
	"dist/completions/vsctl.bash $DATADIR/bash-completion/completions/vsctl 0644"
	"dist/completions/_vsctl $DATADIR/zsh/site-functions/_vsctl 0644"
	"dist/completions/vsctl.fish $DATADIR/fish/vendor_completions.d/vsctl.fish 0644"
	"dist/vs.toml $DOCDIR/vs.toml.example 0644"
	"dist/modules-load.d/vs.conf $DOCDIR/modules-load.d/vs.conf 0644"
	"dist/modprobe.d/vs.conf $DOCDIR/modprobe.d/vs.conf 0644"
	"docs/config.md $DOCDIR/config.md 0644"
)

run_depmod() {
	if [ -n "$DESTDIR" ]; then
		depmod -b "$DESTDIR" "$KVER"
	else
		depmod "$KVER"
	fi
}

systemd_reload() {
	if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
		systemctl daemon-reload
	fi
}

do_install() {
	local ko=${VS_KO:-} vsctl=${VSCTL:-} f src dst mode
	if [ -z "$ko" ]; then
		[ -d "$KDIR" ] || die "no kernel build tree at $KDIR: install the kernel's headers, or give KDIR="
		ko=$(KDIR="$KDIR" bash scripts/build-module.sh)
	fi
	if [ -z "$vsctl" ]; then
		if command -v cargo >/dev/null 2>&1; then
			log "install: building vsctl"
			cargo build -q --release -p vsctl
		fi
		vsctl=target/release/vsctl
		[ -x "$vsctl" ] || die "$vsctl not built: run 'make userspace' first"
	fi
	log "install: $ko -> $DESTDIR$MODULE"
	install -D -m 0644 "$ko" "$DESTDIR$MODULE"
	run_depmod
	install -D -m 0755 "$vsctl" "$DESTDIR$SBINDIR/vsctl"
	for f in "${FILES[@]}"; do
		read -r src dst mode <<<"$f"
		install -D -m "$mode" "$src" "$DESTDIR$dst"
	done
	install -d "$DESTDIR$UNITDIR"
	sed "s|/usr/local/sbin/vsctl|$SBINDIR/vsctl|g" dist/vs.service >"$DESTDIR$UNITDIR/vs.service"
	chmod 0644 "$DESTDIR$UNITDIR/vs.service"
	if [ ! -e "$DESTDIR$SYSCONFDIR/vs/vs.toml" ]; then
		install -D -m 0644 dist/vs.default.toml "$DESTDIR$SYSCONFDIR/vs/vs.toml"
	fi
	systemd_reload
	log "installed vs $VERSION: vs.ko for $KVER, vsctl in $SBINDIR, vs.service in $UNITDIR"
	log "next: edit $SYSCONFDIR/vs/vs.toml, then 'systemctl enable --now vs' (nothing was loaded)"
}

do_uninstall() {
	local f src dst mode
	rm -f "$DESTDIR$MODULE" "$DESTDIR$SBINDIR/vsctl" "$DESTDIR$UNITDIR/vs.service"
	for f in "${FILES[@]}"; do
		read -r src dst mode <<<"$f"
		rm -f "$DESTDIR$dst"
	done
	rmdir "$DESTDIR$DOCDIR/modules-load.d" "$DESTDIR$DOCDIR/modprobe.d" "$DESTDIR$DOCDIR" 2>/dev/null || true
	if [ -d "$DESTDIR/lib/modules/$KVER" ]; then
		run_depmod
	fi
	systemd_reload
	log "uninstalled vs $VERSION (kept $SYSCONFDIR/vs/vs.toml; a loaded module stays loaded: rmmod vs)"
}

dkms_source() {
	local dst=$DESTDIR$SRCDIR
	rm -rf "$dst"
	mkdir -p "$dst/src" "$dst/vs-core/src"
	cp Kbuild "$dst/"
	cp src/*.rs src/*.c src/*.h "$dst/src/"
	cp vs-core/src/*.rs "$dst/vs-core/src/"
	sed "s/@VERSION@/$VERSION/" dist/dkms.conf >"$dst/dkms.conf"
	log "dkms: sources in $dst"
}

case "$action" in
install) do_install ;;
uninstall) do_uninstall ;;
dkms-source) dkms_source ;;
dkms-install)
	[ -z "$DESTDIR" ] || die "dkms-install installs into the system: use dkms-source with DESTDIR"
	dkms_source
	dkms remove -m vs -v "$VERSION" --all >/dev/null 2>&1 || true
	dkms add -m vs -v "$VERSION"
	dkms install -m vs -v "$VERSION" -k "$KVER"
	;;
dkms-uninstall)
	dkms remove -m vs -v "$VERSION" --all || true
	rm -rf "$SRCDIR"
	;;
*) die "usage: install.sh install|uninstall|dkms-source|dkms-install|dkms-uninstall" ;;
esac
