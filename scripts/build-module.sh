#!/usr/bin/env bash
# Build vs.ko. With KDIR (a Rust-enabled kernel's build tree, e.g. /lib/modules/$(uname -r)/build)
# it builds in place, for a real host. Without, it builds against this project's cached kernel
# of flavour $VS_KFLAVOUR (test, sanitize or bench) in .cache/kmod-<flavour>/, a copy of the module's
# sources, so that the flavours (and parallel runs) never overwrite each other's objects.
# Prints the path of the built vs.ko on stdout.
set -euo pipefail
. "$(dirname "$0")/common.sh"

if [ -n "${KDIR:-}" ]; then
	log "module: building vs.ko against $KDIR"
	PATH=$(kbuild_path) make -s -C "$KDIR" LLVM=1 M="$VS_ROOT" modules
	echo "$VS_ROOT/vs.ko"
	exit 0
fi
kdir=$(bash "$VS_ROOT/scripts/build-kernel.sh")
out=$(module_dir)
mkdir -p "$out/src" "$out/vs-core/src"
# Copies keep their modification times, so kbuild rebuilds only what changed.
cp -p "$VS_ROOT/Kbuild" "$out/"
cp -p "$VS_ROOT"/src/*.rs "$VS_ROOT"/src/*.c "$VS_ROOT"/src/*.h "$out/src/"
cp -p "$VS_ROOT"/vs-core/src/*.rs "$out/vs-core/src/"
log "module: building vs.ko ($VS_KFLAVOUR kernel) in ${out#"$VS_ROOT"/}"
( unset MAKEFLAGS MFLAGS MAKELEVEL
  PATH=$(kbuild_path) make -s -C "$kdir" LLVM=1 M="$out" modules )
echo "$out/vs.ko"
