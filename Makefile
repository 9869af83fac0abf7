# SPDX-License-Identifier: GPL-2.0
# vs: top-level entry points. kbuild reads ./Kbuild for the module itself.
#
#   make demo      build everything, boot the test kernel in QEMU, show a VS scenario
#   make check     install what is missing, build, run every test (host + QEMU)
#   make module    build vs.ko (KDIR=/path/to/rust-enabled/kernel/build to choose the kernel)
#   make vm CMD='vsctl list'   run a command in the guest with vs.ko loaded
#   make bench     gate overhead benchmarks in QEMU (docs/bench-gates.md)
#   make bench-cpu CPU share accuracy in QEMU (docs/bench-cpu.md, docs/cpu-shares.png)
#   make bench-web two nginx sites against CPU hogs, with and without vs (docs/bench-web.md)
#   make bench-net network share accuracy in QEMU: vsq vs HTB, fq_codel, pfifo (docs/bench-net.md, docs/net-shares.png)
#   make bench-fig12 two sites sharing one FastCGI backend, five configurations (docs/bench-fig12.md)
#   make bench-scale fork cost with 4,000 VSs and 50,000 classified tasks (docs/bench-scale.md)
#   make bench-charge the CPU charge's cost per slice with 1 and 8 CPUs busy (docs/bench-charge.md)
#   make bench-lockstat contention of vs's locks on 8 vCPUs, before and after the lock-free gates (docs/bench-lockstat.md)
#   make fuzz      the long fuzz run on the sanitize kernel (docs/fuzz.md; about 40 min)
#   make install   on a real host, as root: vs.ko (built against KDIR, default the running kernel's),
#                  vsctl, man page, completions, vs.service; DESTDIR=, PREFIX=/usr/local, KVER=
#   make uninstall take it away again (keeps /etc/vs/vs.toml)
#   make dkms-install  register vs with DKMS, which rebuilds it on kernel upgrades (dkms-uninstall)
#   make generate  regenerate dist/vsctl.8 and dist/completions/ from vsctl's clap definitions

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
# Kernel builds want Debian's rustc (with rust-src) ahead of rustup's.
KPATH := /usr/bin:/usr/sbin:/bin:/sbin:$(HOME)/.cargo/bin

.PHONY: all setup kernel module vsctl userspace demo check test-host test-vm vm bench bench-cpu bench-web bench-net bench-fig12 bench-scale bench-charge bench-lockstat fuzz clean \
	install uninstall dkms-source dkms-install dkms-uninstall generate

all: module userspace

setup:
	@bash scripts/setup.sh

# Print-only target used by the scripts: the kernel build directory (building it if needed).
kernel: setup
	@bash scripts/build-kernel.sh >/dev/null

module:
	@KDIR="$(KDIR)" bash scripts/build-module.sh >/dev/null

userspace:
	@echo "==> userspace: building vsctl, the selftests and the benchmarks" >&2
	@cargo build -q --release -p vsctl -p vs-selftests -p vs-bench

demo: setup module userspace
	@bash scripts/vm-run.sh bash scripts/demo.sh

check: setup
	@bash scripts/check.sh

test-host:
	@cargo test -q --workspace

vm: module userspace
	@bash scripts/vm-run.sh bash -c '$(CMD)'

# Benchmarks run on the production-like "bench" kernel flavour, never on the test kernel.
bench bench-cpu bench-web bench-net bench-fig12 bench-scale: export VS_KFLAVOUR := bench
# Both host cores (multi-threaded TCG), as the published figures were measured; see
# scripts/vm-run.sh for why the tests do not.
bench bench-cpu bench-web bench-net bench-fig12 bench-scale: export VS_TCG_THREAD := multi

# Two boots: QEMU's instruction-counting clock (repeatable ratios) and plain TCG wall clock.
bench: setup module userspace
	@VS_ICOUNT=1 bash scripts/vm-run.sh env ROUNDS=8 bash bench/run.sh
	@VS_ICOUNT=0 bash scripts/vm-run.sh bash bench/run.sh
	@python3 bench/report.py .cache/bench-gates-icount.txt .cache/bench-gates-tcg.txt >docs/bench-gates.md
	@cat docs/bench-gates.md

# fork+exit with 4,000 more VSs and 50,000 more classified tasks (docs/bench-scale.md): a 4 GB
# guest under the instruction-counting clock.
SCALE_VSS ?= 4000
SCALE_TASKS ?= 50000
bench-scale: setup module userspace
	@VS_ICOUNT=1 VS_VM_MEMORY=4G VS_VM_TIMEOUT=$${VS_VM_TIMEOUT:-3600} bash scripts/vm-run.sh \
		env VSS=$(SCALE_VSS) TASKS=$(SCALE_TASKS) bash bench/scale.sh
	@python3 bench/scale_report.py .cache/bench-scale.txt $(SCALE_VSS) $(SCALE_TASKS) >docs/bench-scale.md
	@cat docs/bench-scale.md

# The CPU charge's cost per slice with 1 and with 8 CPUs busy (docs/bench-charge.md): 8 vCPUs
# under the instruction-counting clock, the module before the charge left the state lock
# (d1f8434) and now; CHARGE_BOOTS boots of CHARGE_ROUNDS interleaved rounds (a boot's state
# moves the figures by about 1 %, more than a round's).
CHARGE_BOOTS ?= 2
CHARGE_ROUNDS ?= 4
CHARGE_MODULES ?= before-charge=d1f8434 now=$(shell git rev-parse --short HEAD)
bench-charge: export VS_KFLAVOUR := bench
bench-charge: setup userspace
	@mods="$$(bash bench/build_versions.sh $(CHARGE_MODULES) | tr '\n' ' ')" && \
	for b in $$(seq $(CHARGE_BOOTS)); do \
		VS_ICOUNT=1 VS_NO_LOAD=1 VS_VM_CPUS=8 VS_VM_TIMEOUT=$${VS_VM_TIMEOUT:-3600} bash scripts/vm-run.sh \
			env CHARGE_MODULES="$$mods" ROUNDS=$(CHARGE_ROUNDS) BENCH_OUT=.cache/bench-charge-$$b.txt \
			bash bench/charge.sh || exit 1; \
	done
	@python3 bench/charge_report.py $$(seq -f .cache/bench-charge-%g.txt $(CHARGE_BOOTS)) \
		$(CHARGE_MODULES) >docs/bench-charge.md
	@cat docs/bench-charge.md

# /proc/lock_stat for vs's locks under a storm on 8 vCPUs: the module before the CPU charge left
# the lock (d1f8434), before the gates left it (9a2301b), before the pipe and message gates did
# (0c8c199), and now (docs/bench-lockstat.md). Its own kernel flavour (lockstat: the bench
# kernel plus CONFIG_LOCK_STAT), built on first use; LOCKSTAT_ROUNDS interleaved rounds.
LOCKSTAT_ROUNDS ?= 2
LOCKSTAT_MODULES ?= before-charge=d1f8434 before-gates=9a2301b before-objects=0c8c199 before-stays=1965e5d now=$(shell git rev-parse --short HEAD)
bench-lockstat: export VS_KFLAVOUR := lockstat
bench-lockstat: export VS_TCG_THREAD := multi
bench-lockstat: setup userspace
	@mods="$$(bash bench/build_versions.sh $(LOCKSTAT_MODULES) | tr '\n' ' ')" && \
		VS_NO_LOAD=1 VS_VM_CPUS=8 VS_VM_TIMEOUT=$${VS_VM_TIMEOUT:-3600} bash scripts/vm-run.sh \
		env LOCKSTAT_MODULES="$$mods" ROUNDS=$(LOCKSTAT_ROUNDS) bash bench/lockstat.sh
	@python3 bench/lockstat_report.py .cache/bench-lockstat.txt $(LOCKSTAT_MODULES) >docs/bench-lockstat.md
	@cat docs/bench-lockstat.md

# Plain TCG by default (docs/bench-web.md); VS_ICOUNT=1 runs it under the instruction-counting
# clock instead (docs/bench-web-icount.md), where the module's throughput cost is repeatable.
WEB_MODE = $(if $(filter 1,$(VS_ICOUNT)),icount,tcg)
WEB_DOC = docs/bench-web$(if $(filter 1,$(VS_ICOUNT)),-icount,).md
bench-web: setup module userspace
	@command -v nginx >/dev/null && command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
	@VS_VM_TIMEOUT=$${VS_VM_TIMEOUT:-7200} bash scripts/vm-run.sh bash bench/web.sh
	@python3 bench/web_report.py .cache/bench-web-$(WEB_MODE).txt $(WEB_DOC)
	@cat $(WEB_DOC)

# The report runs on the host with Debian's python3 (the one python3-matplotlib is for).
bench-cpu: setup module userspace
	@/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-matplotlib >/dev/null
	@bash scripts/vm-run.sh bash bench/cpu.sh
	@/usr/bin/python3 bench/cpu_report.py .cache/bench-cpu.txt docs
	@cat docs/bench-cpu.md

# The report runs on the host with Debian's python3 (the one python3-matplotlib is for).
bench-net: setup module userspace
	@/usr/bin/python3 -c 'import matplotlib' 2>/dev/null && command -v tc >/dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-matplotlib iproute2 >/dev/null
	@VS_VM_TIMEOUT=$${VS_VM_TIMEOUT:-2400} bash scripts/vm-run.sh bash bench/net.sh
	@/usr/bin/python3 bench/net_report.py .cache/bench-net.txt docs
	@cat docs/bench-net.md

# The report runs on the host with Debian's python3 (python3-matplotlib), whatever python3 is first on PATH.
bench-fig12: setup module userspace
	@command -v nginx >/dev/null && command -v wrk >/dev/null && ls /usr/sbin/php-fpm* >/dev/null 2>&1 && /usr/bin/python3 -c 'import matplotlib' 2>/dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk php-fpm php8.2-cli python3-matplotlib >/dev/null
	@bash scripts/vm-run.sh bash bench/fig12.sh
	@echo "# host_load $$(cut -d' ' -f1-3 /proc/loadavg)" >>.cache/fig12.txt
	@/usr/bin/python3 bench/fig12_report.py .cache/fig12.txt docs
	@cat docs/bench-fig12.md

# The fuzzer's long run: two phases (plain, failslab) of up to 600,000 random ioctls or 30 min
# each under load (about 300 calls/s on the sanitize kernel under TCG: a little over a million
# in all, about 65 min), unload/load cycles, then kmemleak, all on the sanitize kernel (KASAN,
# KFENCE, UBSAN, lockdep). `make check` runs a short one (tests/run.sh). FUZZ_ARGS overrides
# the fuzzer's arguments.
FUZZ_ARGS ?= --ops 600000 --seconds 1800 --threads 3 --cycles 20 --failslab
fuzz: export VS_KFLAVOUR := sanitize
fuzz: setup module userspace
	@VS_VM_TIMEOUT=$${VS_VM_TIMEOUT:-5400} bash scripts/vm-run.sh bash -c \
		'target/release/vs_fuzz $(FUZZ_ARGS); tests/vs_kmemleak.sh; uname -r' | tee .cache/fuzz.txt
	@python3 tests/fuzz_report.py .cache/fuzz.txt "$(FUZZ_ARGS)" >docs/fuzz.md
	@cat docs/fuzz.md

# Installation on a real host (scripts/install.sh says what goes where). Never loads the module.
install uninstall dkms-source dkms-install dkms-uninstall:
	@bash scripts/install.sh $@

generate:
	@VS_REGENERATE=1 cargo test -q -p vsctl generated >/dev/null
	@git status --short dist/

clean:
	@kdir=$$(bash scripts/build-kernel.sh --dir-only 2>/dev/null); \
	[ -d "$$kdir" ] && PATH=$(KPATH) $(MAKE) -s -C "$$kdir" LLVM=1 M=$(CURDIR) clean || true
	@cargo clean
