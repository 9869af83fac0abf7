#!/usr/bin/env bash
# Install what building and testing vs needs; skips what is already there.
set -euo pipefail
. "$(dirname "$0")/common.sh"

APT_PKGS=(linux-source-6.12 rustc-web rust-web-src clang lld llvm libclang-dev
	qemu-system-x86 busybox-static udev flex bison bc libelf-dev libssl-dev cpio
	pahole iproute2 kmod python3 python3-pip make gcc
	dkms systemd man-db groff-base zsh fish python3-prometheus-client)

missing=()
for p in "${APT_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	log "apt: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	log "apt: all ${#APT_PKGS[@]} packages present"
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
	export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found (rustup's toolchain is expected on this machine)"

if ! command -v bindgen >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/bindgen" ]; then
	log "cargo: installing bindgen-cli (the kernel's Rust support needs it)"
	cargo install --locked -q bindgen-cli
else
	log "bindgen present"
fi

if ! command -v vng >/dev/null 2>&1; then
	log "pip: installing virtme-ng"
	export PIP_ROOT_USER_ACTION=ignore
	python3 -m pip install -q virtme-ng ||
		python3 -m pip install -q --break-system-packages virtme-ng
	hash -r
	command -v vng >/dev/null 2>&1 || die "virtme-ng installed but vng is not on PATH"
else
	log "virtme-ng present"
fi

