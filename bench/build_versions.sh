#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build vs.ko as it was at each LABEL=COMMIT given, against the kernel of flavour
# $VS_KFLAVOUR, for the benchmarks that compare versions of the module in one boot (`make
# bench-lockstat`, `make bench-charge`): the module's sources (Kbuild, src/, vs-core/src/) of
# that commit are exported from git into .cache/versions-FLAVOUR/LABEL/ and built there.
# Prints LABEL=PATH per module.
set -euo pipefail
. "$(dirname "$0")/../scripts/common.sh"
kdir=$(bash "$VS_ROOT/scripts/build-kernel.sh")
for spec in "$@"; do
	label=${spec%%=*} commit=${spec#*=}
	out=$VS_ROOT/.cache/versions-$VS_KFLAVOUR/$label
	rm -rf "$out"
	mkdir -p "$out"
	git -C "$VS_ROOT" archive "$commit" Kbuild src vs-core/src | tar -x -C "$out"
	log "versions: building vs.ko of $label ($(git -C "$VS_ROOT" rev-parse --short "$commit"))"
	( unset MAKEFLAGS MFLAGS MAKELEVEL
	  PATH=$(kbuild_path) make -s -C "$kdir" LLVM=1 M="$out" modules >&2 )
	echo "$label=$out/vs.ko"
done
