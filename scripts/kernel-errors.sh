#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Print the kernel log lines (dmesg on stdin) that report a kernel problem: those matching
# scripts/kernel-errors.re (BUG, WARNING, Oops, KASAN, UBSAN, lockdep, hung task, a stack dump).
#
#   --failslab  allocation failures are being injected (the sanitize kernel's failslab): a
#               warn_alloc report ("<comm>: page allocation failure: ..." or "<comm>: vmalloc
#               error: ...", then its "Call Trace:") is then no problem of its own. The fuzzer
#               fails allocations made with vs's code on the stack, and kernel code that vs
#               calls reports such a failure even where it falls back (a kretprobe's instance
#               pool: vmalloc first, then kmalloc). Anything else in the report still counts.
set -euo pipefail
re=$(cat "$(dirname "$0")/kernel-errors.re")
if [ "${1:-}" = --failslab ]; then
	# Drop the "Call Trace:" line that follows a warn_alloc header within a few lines.
	awk '/(page allocation failure|vmalloc error): / { alloc = 6 }
		alloc > 0 && /Call Trace:/ { alloc = 0; next }
		{ if (alloc > 0) alloc--; print }'
else
	cat
fi | grep -E "$re" || true
