# Shared settings for the vs scripts; sourced, not run.
# shellcheck shell=bash

VS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything large (kernel source, kernel builds) lives outside the repository.
VS_CACHE=${VS_CACHE:-$HOME/.cache/vs}
KSRC_TARBALL=${KSRC_TARBALL:-/usr/src/linux-source-6.12.tar.xz}

# Kernel builds need Debian's rustc (it ships rust-src); rustup's goes after it.
kbuild_path() {
	echo "/usr/bin:/usr/sbin:/bin:/sbin:$HOME/.cargo/bin:/usr/local/bin"
}

# Tools installed per user (rustup, pip, pyenv) may be missing from a bare CI PATH.
for d in "$HOME/.cargo/bin" "$HOME/.local/bin" "$HOME/.pyenv/shims" /usr/local/bin; do
	case ":$PATH:" in *":$d:"*) ;; *) [ -d "$d" ] && PATH="$PATH:$d" ;; esac
done
export PATH

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Kernel flavours: "test" (lockdep and friends; make check, make vm), "sanitize" (KASAN, KFENCE,
# kmemleak, UBSAN, failslab; make check, make fuzz) and "bench" (production-like;
# make bench*). Each is kernel/vs.config plus kernel/<flavour>.config, cached on its own.
VS_KFLAVOUR=${VS_KFLAVOUR:-test}
export VS_KFLAVOUR
kernel_fragments() { echo "$VS_ROOT/kernel/vs.config" "$VS_ROOT/kernel/$VS_KFLAVOUR.config"; }

# The cached kernel build directory for the current flavour's fragments, source and compiler.
kernel_key() {
	{
		# shellcheck disable=SC2046
		cat $(kernel_fragments)
		stat -c '%s %Y' "$KSRC_TARBALL" 2>/dev/null
		/usr/bin/rustc --version 2>/dev/null
		clang --version 2>/dev/null | head -n1
	} | sha256sum | cut -c1-16
}

kernel_dir() { echo "$VS_CACHE/kbuild-$VS_KFLAVOUR-$(kernel_key)"; }

# Where scripts/build-module.sh builds vs.ko for the current flavour (inside the checkout).
module_dir() { echo "$VS_ROOT/.cache/kmod-$VS_KFLAVOUR"; }

# kselftest's KTAP helpers for the shell tests, from the kernel source we build.
export VS_KTAP_HELPERS=${VS_KTAP_HELPERS:-$VS_CACHE/linux-source-6.12/tools/testing/selftests/kselftest/ktap_helpers.sh}
