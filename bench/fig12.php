<?php
// SPDX-License-Identifier: GPL-2.0
// The shared FastCGI backend's work for bench/fig12.sh: burn BURN_MS (default 11) ms of this
// process's own CPU time (user + system, from getrusage), so that a request costs the same
// CPU whatever the emulator's speed, then answer with a few bytes.
$burn = (float)(getenv('BURN_MS') ?: 11) / 1000.0;
function cpu(): float
{
	$r = getrusage();
	return $r['ru_utime.tv_sec'] + $r['ru_utime.tv_usec'] / 1e6
		+ $r['ru_stime.tv_sec'] + $r['ru_stime.tv_usec'] / 1e6;
}
$t0 = cpu();
$x = 0;
do {
	for ($i = 0; $i < 2000; $i++) {
		$x += $i * $i;
	}
} while (cpu() - $t0 < $burn);
header('Content-Type: text/plain');
echo "ok ", $x & 0xff, "\n";
