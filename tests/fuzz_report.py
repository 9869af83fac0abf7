#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""docs/fuzz.md from the output of `make fuzz` (vs_fuzz and vs_kmemleak.sh KTAP)."""
import re
import sys

text = open(sys.argv[1], errors="replace").read()
args = sys.argv[2] if len(sys.argv) > 2 else ""
lines = text.splitlines()
phases = [l[2:] for l in lines if re.match(r"# (fuzz|fuzz with failslab): ", l)]
cycles = [l[2:] for l in lines if "unload/load cycles" in l]
results = [l for l in lines if re.match(r"(not )?ok \d+ ", l)]
leaks = [l[2:] for l in lines if l.startswith("# kmemleak:")]
total = sum(int(m.group(1)) for p in phases if (m := re.search(r"(\d+) operations", p)))
failed = [r for r in results if r.startswith("not ok")]
verdict = "no failure" if not failed else f"{len(failed)} failed"

print(f"""# Fuzzing the module (`make fuzz`)

Kernel: the **sanitize** flavour (kernel/vs.config + kernel/sanitize.config: KASAN generic,
KFENCE, kmemleak, UBSAN bounds/shift, lockdep, DEBUG_ATOMIC_SLEEP, failslab), QEMU/TCG with
2 vCPUs. Program: tests/src/bin/vs_fuzz.rs, `vs_fuzz {args}`.

What runs: ioctl threads issue random calls (all 12 commands and unknown ones) with boundary
and random arguments and bad pointers (NULL, a kernel address, an unmapped page, a structure
straddling into it, a read-only page for answers), while four load processes fork/exit,
exec, connect/accept over loopback and pass pipe, unix-socket and SysV messages, and a churn
thread creates and destroys VSs with rules and members. The failslab phase makes 1 in 10 slab allocations fail that are made,
with vs's code on the stack, during the ioctl threads' calls (the stack trace filter keeps
the kernel's own paths, 9p and the module loader out of it). Then the module is unloaded and
loaded again under the same load with VSs, rules, members and reniced tasks in place (every
other cycle with failslab on the module's init, retried until it loads). After each phase: every error is one the
README documents, unknown commands get ENOTTY and unreadable arguments EFAULT; every VS's
`nr_procs` equals its members, each alive and placed there by `WHICH`; no task keeps a nice
vs gave it; no new kernel log line matches scripts/kernel-errors.re. At the end kmemleak
scans twice and nothing allocated by vs may be unreferenced.

## Result: {total:,} operations, {verdict}

| phase | figures |
|---|---|""")
for p in phases:
    name, rest = p.split(": ", 1)
    print(f"| {name} | {rest} |")
for c in cycles:
    print(f"| unload/load | {c} |")
for l in leaks:
    print(f"| kmemleak | {l.replace('kmemleak: ', '')} (only objects allocated by vs fail the run) |")
print("\n## Tests\n")
for r in results:
    print(f"- `{r}`")
