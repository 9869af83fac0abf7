#!/usr/bin/env bash
# The whole test run: host unit/property tests, then the module and userspace built and the
# kselftest-style programs run in QEMU. Ends with "N passed, N failed, N skipped".
set -uo pipefail
. "$(dirname "$0")/common.sh"
cd "$VS_ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

passed=0 failed=0 skipped=0
mkdir -p .cache
summary() {
	echo "$passed passed, $failed failed, $skipped skipped"
	exit $((failed > 0 ? 1 : 0))
}

bash scripts/setup.sh || { echo "setup failed"; failed=$((failed + 1)); summary; }

log "host: cargo test (pure logic, ABI, vsctl helpers)"
cargo test --workspace 2>&1 | tee .cache/host-tests.log | grep -E '^test result:|FAILED|panicked' || true
while read -r p f i; do
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + i))
done < <(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/p' .cache/host-tests.log)
if ! grep -q '^test result:' .cache/host-tests.log || grep -qE '^error(\[|:)' .cache/host-tests.log; then
	echo "not ok - host tests did not build"; failed=$((failed + 1))
fi

log "build: kernel, vs.ko, vsctl, selftests"
if ! make -s module userspace; then
	echo "not ok - build failed"; failed=$((failed + 1)); summary
fi

log "vm: running tests/run.sh in QEMU"
bash scripts/vm-run.sh bash tests/run.sh | tee .cache/vm-tests.log
vm_rc=${PIPESTATUS[0]}
vp=$(grep -E '^ok [0-9]+ ' .cache/vm-tests.log | grep -vc '# SKIP' || true)
vs=$(grep -E '^ok [0-9]+ .*# SKIP' .cache/vm-tests.log | wc -l)
vf=$(grep -cE '^not ok [0-9]+ ' .cache/vm-tests.log || true)
passed=$((passed + vp)) skipped=$((skipped + vs)) failed=$((failed + vf))
if [ "$vm_rc" -ne 0 ] && [ "$vf" -eq 0 ]; then
	echo "not ok - the QEMU run failed (status $vm_rc) without a failing test: see above"
	failed=$((failed + 1))
fi
summary
