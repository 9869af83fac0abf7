#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The paper's Figure 11 scenario, run inside the guest by `make bench-web`: two web sites
# (two nginx instances on loopback) under closed-loop load (wrk), against 10 CPU hogs, in
# ROUNDS interleaved rounds of: the sites alone with the module absent, loaded, and loaded with
# the sites in VSs with shares and rules (the paper's web throughput cost); with the hogs and
# nothing to hold shares; with
# vs giving each site (server tree and its load generator) a 50 % CPU share; and with cgroup v2
# doing the same (a cgroup per site with cpu.weight 10000, the hogs in one with weight 1: what
# a user would set up instead); with vs given what that cgroup set-up is given (the hogs in a VS
# of their own with a 2 % share, each site 49 %); and with nice values set by hand (the sites at
# -20, the hogs at 0 and at 19: the most any nice-based actuator can do). Samples go to .cache/bench-web-{tcg,icount}.txt; bench/web_report.py (on the
# host, by `make bench-web`) writes docs/bench-web.md.
set -uo pipefail
cd "$VS_ROOT"
command -v nginx >/dev/null && command -v wrk >/dev/null || { echo "bench-web: needs nginx and wrk"; exit 1; }
W=/tmp/vs-web
rm -rf "$W" && mkdir -p "$W/www"
head -c 4096 /dev/urandom | base64 >"$W/www/index.html"
for i in 1 2; do
	cat >"$W/nginx$i.conf" <<CONF
worker_processes 1;
daemon off;
pid $W/nginx$i.pid;
error_log $W/error$i.log;
events { worker_connections 256; }
http {
	access_log off;
	server { listen 127.0.0.1:808$i; root $W/www; }
}
CONF
done
DUR=${DUR:-6}

start_sites() {
	for i in 1 2; do
		nginx -c "$W/nginx$i.conf" -e "$W/error$i.log" &
		eval "NGINX$i=\$!"
	done
	sleep 1
}
stop_sites() { kill "$NGINX1" "$NGINX2" 2>/dev/null; wait "$NGINX1" "$NGINX2" 2>/dev/null; }
hogs() { for _ in $(seq 10); do sh -c 'while :; do :; done' & HOGS="${HOGS:-} $!"; done; }
stop_hogs() { kill $HOGS 2>/dev/null; wait $HOGS 2>/dev/null; HOGS=; }

# load: run wrk against both sites at once; with vs, each wrk joins its site's VS first.
load() { # MODE
	for i in 1 2; do
		(
			[ "$1" = vs ] && vsctl addprocess "site$i" $BASHPID >/dev/null
			[ "$1" = nice ] && renice -n -20 -p $BASHPID >/dev/null
			[ "$1" = cgroup ] && echo $BASHPID >"$CG/web-site$i/cgroup.procs"
			exec wrk -t1 -c4 -d"${DUR}s" "http://127.0.0.1:808$i/" >"$W/wrk$i.txt" 2>&1
		) &
		eval "WRK$i=\$!"
	done
	wait "$WRK1" "$WRK2"
	R1=$(awk '/Requests\/sec/ { print $2 }' "$W/wrk1.txt")
	R2=$(awk '/Requests\/sec/ { print $2 }' "$W/wrk2.txt")
}

ROUNDS=${ROUNDS:-5}
RAW=${RAW:-.cache/bench-web-$([ "${VS_ICOUNT:-0}" = 1 ] && echo icount || echo tcg).txt}
CG=/sys/fs/cgroup
grep -q "^cgroup2 $CG " /proc/mounts || { mkdir -p $CG && mount -t cgroup2 none $CG; }
grep -qw cpu $CG/cgroup.subtree_control || echo +cpu >$CG/cgroup.subtree_control
record() { echo "$1 $2 $R1 $R2" >>"$RAW"; }
sites_procs() { # SITE: the pids of nginx master SITE and its worker
	echo "$(eval echo \$NGINX$1) $(pgrep -P "$(eval echo \$NGINX$1)")"
}
cg_move() { # GROUP PIDS...
	local g=$1 p
	shift
	for p in "$@"; do echo "$p" >"$CG/$g/cgroup.procs"; done
}

# vs_sites / vs_unsites: each site's server tree in a VS with a 50 % CPU share, and the rules a
# host like this would have (forks stay in their site; a site's accepts are charged by
# requester). The load generators join in load().
vs_sites() { # [SHARE]
	vsctl create site1 --cpu-share "${1:-50}" >/dev/null && vsctl create site2 --cpu-share "${1:-50}" >/dev/null
	RULES=$(for r in '(fork, site1) -> (site1)' '(fork, site2) -> (site2)' \
		'(accept, site1, req=*) -> (req)' '(accept, site2, req=*) -> (req)'; do vsctl addrule "$r"; done)
	vsctl addprocess site1 "$NGINX1" --tree >/dev/null && vsctl addprocess site2 "$NGINX2" --tree >/dev/null
	sleep 1
}
vs_unsites() {
	vsctl addprocess root "$NGINX1" --tree >/dev/null; vsctl addprocess root "$NGINX2" --tree >/dev/null
	for id in $RULES; do vsctl delrule "$id" >/dev/null; done
	vsctl destroy site1 >/dev/null; vsctl destroy site2 >/dev/null
	# The controller's next tick (cpu_period_ms, 100) gives the tasks their own nice back.
	sleep 0.5
}

echo "# one boot, $ROUNDS rounds of ${DUR} s each, kernel $(uname -r), the ${VS_KFLAVOUR:-?} flavour, $([ "${VS_ICOUNT:-0}" = 1 ] && echo "QEMU -icount clock" || echo "TCG wall clock")" >"$RAW"
start_sites
for r in $(seq "$ROUNDS"); do
	echo "bench-web: round $r/$ROUNDS: module absent" >&2
	rmmod vs
	load none; record absent "$r"
	insmod "$VS_KO"
	echo "bench-web: round $r/$ROUNDS: sites alone" >&2
	load none; record alone "$r"
	echo "bench-web: round $r/$ROUNDS: sites alone in VSs with shares and rules" >&2
	vs_sites
	load vs; record loaded "$r"
	vs_unsites
	hogs
	echo "bench-web: round $r/$ROUNDS: 10 hogs, nothing" >&2
	load none; record hogs "$r"
	echo "bench-web: round $r/$ROUNDS: 10 hogs, vs 50/50" >&2
	vs_sites
	load vs; record vs "$r"
	vs_unsites
	echo "bench-web: round $r/$ROUNDS: 10 hogs, vs 49/49 and the hogs in a 2 % VS" >&2
	vs_sites 49
	vsctl create bg --cpu-share 2 >/dev/null
	for p in $HOGS; do vsctl addprocess bg "$p" >/dev/null; done
	sleep 1
	load vs; record vsbg "$r"
	for p in $HOGS; do vsctl addprocess root "$p" >/dev/null; done
	vsctl destroy bg >/dev/null
	echo "# nice values back: sites $(ps -o ni= -p "$(echo $(sites_procs 1) $(sites_procs 2) | tr ' ' ,)" | tr -d ' ' | sort -u | tr '\n' ' ')hogs $(ps -o ni= -p "$(echo $HOGS | tr ' ' ,)" | tr -d ' ' | sort -u | tr '\n' ' ')" >&2
	vs_unsites
	# What any nice-based actuator can do at most: the sites at the strongest nice by hand,
	# with the hogs left at 0 (what vs 50/50 ends at) and at the weakest (19).
	echo "bench-web: round $r/$ROUNDS: 10 hogs, the sites at nice -20 by hand" >&2
	renice -n -20 -p $(sites_procs 1) $(sites_procs 2) >/dev/null
	load nice; record nice "$r"
	echo "bench-web: round $r/$ROUNDS: 10 hogs at nice 19, the sites at nice -20 by hand" >&2
	renice -n 19 -p $HOGS >/dev/null
	load nice; record nicebg "$r"
	renice -n 0 -p $(sites_procs 1) $(sites_procs 2) $HOGS >/dev/null
	echo "bench-web: round $r/$ROUNDS: 10 hogs, cgroup v2 weights" >&2
	for g in site1 site2 bg; do mkdir -p "$CG/web-$g"; done
	echo 10000 >"$CG/web-site1/cpu.weight"; echo 10000 >"$CG/web-site2/cpu.weight"; echo 1 >"$CG/web-bg/cpu.weight"
	cg_move web-site1 $(sites_procs 1); cg_move web-site2 $(sites_procs 2); cg_move web-bg $HOGS
	sleep 1
	load cgroup; record cgroup "$r"
	cg_move . $(sites_procs 1) $(sites_procs 2) $HOGS 2>/dev/null
	for g in site1 site2 bg; do rmdir "$CG/web-$g"; done
	stop_hogs
done
stop_sites
echo "bench-web: samples in $RAW" >&2
