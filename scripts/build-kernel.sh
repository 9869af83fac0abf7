#!/usr/bin/env bash
# Build (or reuse) a Rust-enabled 6.12 kernel: tinyconfig + kernel/vs.config + kernel/$VS_KFLAVOUR.config.
# The build lives in $VS_CACHE keyed by a hash of the fragment, the source and the compilers,
# so a second run with nothing changed returns at once. Prints the build directory on stdout.
set -euo pipefail
. "$(dirname "$0")/common.sh"
export PATH=$(kbuild_path)

KDIR=$(kernel_dir)
if [ "${1:-}" = --dir-only ]; then
	echo "$KDIR"
	exit 0
fi
# One build of a flavour at a time (parallel make check / make bench runs wait here).
mkdir -p "$VS_CACHE"
exec 9>"$VS_CACHE/.lock-$VS_KFLAVOUR"
flock 9
if [ -f "$KDIR/.vs-built" ]; then
	log "kernel: reusing $KDIR"
	echo "$KDIR"
	exit 0
fi

SRC=$VS_CACHE/linux-source-6.12
if [ ! -f "$SRC/.vs-extracted" ]; then
	log "kernel: extracting $KSRC_TARBALL (about 20 s)"
	rm -rf "$SRC"
	mkdir -p "$VS_CACHE"
	tar -C "$VS_CACHE" -xf "$KSRC_TARBALL"
	touch "$SRC/.vs-extracted"
fi

command -v bindgen >/dev/null || die "bindgen missing: run scripts/setup.sh first (without it CONFIG_RUST silently drops out)"
rm -rf "$KDIR"
mkdir -p "$KDIR"
log "kernel: configuring in $KDIR"
make -s -C "$SRC" O="$KDIR" LLVM=1 tinyconfig >/dev/null
# shellcheck disable=SC2046
"$SRC/scripts/kconfig/merge_config.sh" -m -O "$KDIR" "$KDIR/.config" $(kernel_fragments) >/dev/null
make -s -C "$SRC" O="$KDIR" LLVM=1 olddefconfig >/dev/null
make -s -C "$SRC" O="$KDIR" LLVM=1 rustavailable >&2 || die "Rust toolchain unusable for the kernel"

# Every option of the fragment must have survived olddefconfig (dependencies can drop them).
bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		grep -qx "$line" "$KDIR/.config" || { log "config: $line did not stick"; bad=1; } ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt%% *}
		grep -q "^$opt=" "$KDIR/.config" && { log "config: $opt should be unset"; bad=1; } ;;
	esac
done < <(cat $(kernel_fragments))
((bad == 0)) || die "kernel config does not match kernel/vs.config + kernel/$VS_KFLAVOUR.config"

jobs=$(nproc)
# Steps (CC, RUSTC, LD, AR, ...) a full build of this configuration takes, measured on a fresh
# build here; the progress line counts against it.
expect=${VS_KBUILD_STEPS:-2215}
log "kernel: building the $VS_KFLAVOUR flavour with $jobs jobs (about 12 min on 2 cores; progress every 30 s)"
start=$(date +%s)
# Under `make -s` the caller's MAKEFLAGS would silence kbuild's step lines too, leaving nothing
# to count: build with kbuild's own quiet output (one line per step).
( unset MAKEFLAGS MFLAGS MAKELEVEL
  make -C "$SRC" O="$KDIR" LLVM=1 -j"$jobs" bzImage modules >"$KDIR/build.log" 2>&1 ) &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	sleep 30
	kill -0 "$pid" 2>/dev/null || break
	n=$(grep -cE '^  [A-Z0-9_]+ +' "$KDIR/build.log" || true)
	last=$(grep -E '^  [A-Z0-9_]+ +' "$KDIR/build.log" | tail -n1 | awk '{print $NF}')
	log "kernel: $(( $(date +%s) - start )) s, step $n of ~$expect, last: ${last:-none yet}"
done
steps=$(grep -cE '^  [A-Z0-9_]+ +' "$KDIR/build.log" || true)
if ! wait "$pid"; then
	tail -n 40 "$KDIR/build.log" >&2
	die "kernel build failed (log: $KDIR/build.log)"
fi
touch "$KDIR/.vs-built"
log "kernel: $VS_KFLAVOUR flavour built in $(( $(date +%s) - start )) s ($steps steps)"
echo "$KDIR"
