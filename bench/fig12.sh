#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The paper's Figure 12 scenario ("shared FastCGI backend"), run inside the guest by
# `make bench-fig12`: two nginx sites (www1, www2) share ONE single-process php-fpm backend
# (pm = static, 1 child, bench/fig12.php burns ~11 ms of CPU per request; nginx connects to it
# over TCP per request). Site 1 is driven at rising closed-loop load, site 2 at a fixed -c2;
# site 2's throughput and p99 latency are recorded for five configurations (none, gates,
# ordered, replicated, cgroup; see docs/bench-fig12.md), in ROUNDS interleaved rounds.
# Placement: this script and everything it starts run on vCPU 0, every php-fpm process on
# vCPU 1, so the backend has the same CPU in every configuration.
# Raw results go to $RAW (one line per wrk pair); bench/fig12_report.py turns them into
# docs/bench-fig12.md and docs/fig12.png.
set -uo pipefail
cd "$VS_ROOT"
FPM=$(command -v php-fpm || ls /usr/sbin/php-fpm* 2>/dev/null | head -n 1)
for c in nginx wrk taskset ss "$FPM"; do
	command -v "$c" >/dev/null || { echo "fig12: needs nginx, wrk, php-fpm, taskset and ss (missing: $c)" >&2; exit 1; }
done

DUR=${DUR:-5}                          # seconds per wrk run
LOADS=${LOADS:-"1 2 4 8 16 32 64"}     # site 1's connections
C2=${C2:-2}                            # site 2's connections
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-"none gates ordered replicated cgroup"}
BURN_MS=${BURN_MS:-11}
RAW=${RAW:-$VS_ROOT/.cache/fig12.txt}
W=/tmp/vs-fig12
CG=/sys/fs/cgroup
P=/sys/module/vs/parameters
MAXC=${LOADS##* }
say() { echo "fig12 [$SECONDS s]: $*" >&2; }

# Everything below runs on vCPU 0 unless started with `taskset -c 1` (the backends).
taskset -p -c 0 $$ >/dev/null

rm -rf "$W" && mkdir -p "$W"
cp bench/fig12.php "$W/burn.php"
chmod -R a+rX "$W"

fpm_conf() { # N PORT
	cat >"$W/fpm$1.conf" <<CONF
[global]
pid = $W/fpm$1.pid
error_log = $W/fpm$1.log
daemonize = no
[backend$1]
user = nobody
group = nogroup
listen = 127.0.0.1:$2
listen.backlog = 511
pm = static
pm.max_children = 1
pm.max_requests = 0
env[BURN_MS] = $BURN_MS
CONF
}
nginx_conf() { # SITE BACKEND_PORT
	cat >"$W/nginx$1.conf" <<CONF
worker_processes 1;
daemon off;
pid $W/nginx$1.pid;
error_log $W/error$1.log;
events { worker_connections 1024; }
http {
	access_log off;
	server {
		listen 127.0.0.1:808$1 backlog=511;
		location / {
			include /etc/nginx/fastcgi_params;
			fastcgi_param SCRIPT_FILENAME $W/burn.php;
			fastcgi_pass 127.0.0.1:$2;
		}
	}
}
CONF
}
fpm_conf 1 9000
fpm_conf 2 9001

# join GROUP: put the calling (sub)shell into GROUP (a VS or a cgroup, by $MODE) before it
# execs a server or a load generator.
join() {
	case $MODE in
	vs) vsctl addprocess "$1" $BASHPID >/dev/null ;;
	cgroup) echo $BASHPID >"$CG/fig12-$1/cgroup.procs" ;;
	esac
}

# Builtins only from here on in the measuring loop: under TCG on a busy host every exec costs
# about a second of guest time.
# listening PORT: is a TCP socket listening on 127.0.0.1 or 0.0.0.0:PORT (from /proc/net/tcp)?
listening() {
	local hex sl local rem st _
	printf -v hex '%04X' "$1"
	while read -r sl local rem st _; do
		[ "$st" = 0A ] && [ "${local#*:}" = "$hex" ] && return 0
	done </proc/net/tcp
	return 1
}
wait_port() { # PORT
	for _ in {1..600}; do
		listening "$1" && return 0
		sleep 0.1
	done
	say "nothing listens on port $1"
	return 1
}

# All servers, started once per round (starting php-fpm costs tens of seconds of guest time
# under TCG on a busy host); a configuration only moves them between groups:
#   fpm1 on :9000 (the shared backend; site 1's own in `replicated`), fpm2 on :9001 (site 2's
#   own in `replicated`, idle otherwise), nginx1 :8081 -> 9000 (site 1), nginx2 :8082 -> 9000
#   (site 2), nginx3 :8083 -> 9001 (site 2 in `replicated`).
start_servers() {
	local n i port
	PIDS=
	for n in 1 2; do
		taskset -c 1 "$FPM" -F -y "$W/fpm$n.conf" &
		eval "FPM$n=\$!"
		PIDS="$PIDS $!"
	done
	for i in 1 2 3; do
		port=9000
		[ "$i" = 3 ] && port=9001
		nginx_conf "$i" "$port"
		nginx -c "$W/nginx$i.conf" -e "$W/error$i.log" &
		eval "NGINX$i=\$!"
		PIDS="$PIDS $!"
	done
	for port in 9000 9001 8081 8082 8083; do wait_port $port || return 1; done
	# Every process of each server (master and workers), for moving them between cgroups.
	ALL_FCGI="$FPM1 $FPM2 $(pgrep -P "$FPM1") $(pgrep -P "$FPM2")"
	ALL_WWW1="$NGINX1 $(pgrep -P "$NGINX1")"
	ALL_WWW2="$NGINX2 $NGINX3 $(pgrep -P "$NGINX2") $(pgrep -P "$NGINX3")"
	say "  servers up"
}
stop_servers() {
	kill $PIDS 2>/dev/null
	wait $PIDS 2>/dev/null
	PIDS=
}

# parse_wrk FILE: sets _R (req/s), _L (99th percentile latency as wrk prints it, e.g. 45.12ms,
# 1.20s, 850.00us), _E (failed requests: socket errors incl. timeouts, and non-2xx answers).
parse_wrk() {
	local line
	_R=nan _L=nan _E=0
	while read -r line; do
		case $line in
		Requests/sec:*) _R=${line##* } ;;
		"99% "*) _L=${line##* } ;;
		"Socket errors:"*)
			set -- ${line//,/}
			_E=$((_E + $4 + $6 + $8 + $10)) ;;
		"Non-2xx or 3xx responses:"*) _E=$((_E + ${line##* })) ;;
		esac
	done <"$1"
}

# load C1 C2 [SECS]: wrk on both sites at once (a count of 0 leaves that site idle); each wrk
# joins its site's group. Sets R1 R2 (req/s), L1 L2 (p99), E1 E2 (failed requests).
load() {
	local pids= i c port secs=${3:-$DUR}
	for i in 1 2; do
		c=$1
		[ "$i" = 2 ] && c=$2
		eval "R$i=- L$i=- E$i=-"
		[ "$c" -gt 0 ] || continue
		(
			join "www$i"
			port=808$i
			[ "$i" = 2 ] && port=$SITE2_PORT
			exec wrk -t1 -c"$c" -d"${secs}s" --timeout 10s --latency "http://127.0.0.1:$port/"
		) >"$W/wrk$i.txt" 2>&1 &
		pids="$pids $!"
	done
	wait $pids
	for i in 1 2; do
		c=$1
		[ "$i" = 2 ] && c=$2
		[ "$c" -gt 0 ] || continue
		parse_wrk "$W/wrk$i.txt"
		eval "R$i=\$_R L$i=\$_L E$i=\$_E"
	done
}
record() { # LABEL C1
	echo "$1 $2 $ROUND $R2 $L2 $E2 $R1 $L1 $E1" >>"$RAW"
}

# The backend worker's CPU time (utime + stime from /proc/PID/stat, in clock ticks: the kernel
# scales their sum to the precise runtime), for its CPU per request around one run.
worker_ticks() {
	local t=0 line
	for p in $(pgrep -P "$FPM1"); do
		read -r line <"/proc/$p/stat"
		set -- ${line##*) }
		t=$((t + ${12} + ${13}))
	done
	echo $t
}

cg_move() { # GROUP PIDS...: move processes into cgroup GROUP (or back to the root: -)
	local g=$1 p f=$CG/cgroup.procs
	shift
	[ "$g" = - ] || f=$CG/fig12-$g/cgroup.procs
	for p in "$@"; do echo "$p" >"$f"; done
}

setup_config() { # CONFIG
	MODE=none SITE2_PORT=8082
	case $1 in
	gates | ordered)
		if [ "$1" = ordered ] && [ ! -w $P/accept_by_share ]; then
			say "NOTE: $P/accept_by_share is missing (accept ordering not in this vs.ko): skipping 'ordered'"
			echo "# skipped ordered: no accept_by_share parameter" >>"$RAW"
			return 1
		fi
		if [ -w $P/accept_by_share ]; then
			[ "$1" = ordered ] && echo 1 >$P/accept_by_share || echo 0 >$P/accept_by_share
		else
			say "NOTE: $P/accept_by_share is missing: 'gates' runs with the accept queue in FIFO order"
		fi
		vsctl create www1 --id 1 --cpu-share 50 >/dev/null &&
			vsctl create www2 --id 2 --cpu-share 50 >/dev/null &&
			vsctl create fcgi >/dev/null || return 1
		RULES=$(for r in '(accept, fcgi, req=*) -> (req)' '(accept, www1, req=*) -> (req)' \
			'(accept, www2, req=*) -> (req)'; do vsctl addrule "$r"; done)
		vsctl addprocess --tree fcgi "$FPM1" >/dev/null &&
			vsctl addprocess --tree www1 "$NGINX1" >/dev/null &&
			vsctl addprocess --tree www2 "$NGINX2" >/dev/null || return 1
		MODE=vs
		;;
	replicated)
		SITE2_PORT=8083
		;;
	cgroup)
		if ! grep -q cgroup2 /proc/mounts; then
			mkdir -p $CG && mount -t cgroup2 none $CG || return 1
		fi
		grep -qw cpu $CG/cgroup.subtree_control || echo +cpu >$CG/cgroup.subtree_control || return 1
		for g in www1 www2 fcgi; do
			mkdir -p "$CG/fig12-$g" && echo 100 >"$CG/fig12-$g/cpu.weight" || return 1
		done
		cg_move fcgi $ALL_FCGI && cg_move www1 $ALL_WWW1 && cg_move www2 $ALL_WWW2 || return 1
		MODE=cgroup
		;;
	esac
}
teardown_config() { # CONFIG
	case $1 in
	gates | ordered)
		[ -w $P/accept_by_share ] && echo 0 >$P/accept_by_share
		for r in $RULES; do vsctl delrule "$r" >/dev/null; done
		RULES=
		for p in $FPM1 $NGINX1 $NGINX2; do vsctl addprocess --tree root "$p" >/dev/null; done
		for v in www1 www2 fcgi; do vsctl destroy $v >/dev/null || say "could not destroy VS $v"; done
		;;
	cgroup)
		cg_move - $ALL_FCGI $ALL_WWW1 $ALL_WWW2
		for g in www1 www2 fcgi; do rmdir "$CG/fig12-$g" || say "could not remove cgroup $g"; done
		;;
	esac
	MODE=none SITE2_PORT=8082
}

: >"$RAW"
{
	echo "# kernel $(uname -r) flavour ${VS_KFLAVOUR:-?} cpus $(nproc --all) dur $DUR c2 $C2 burn_ms $BURN_MS rounds $ROUNDS"
	echo "# vs.ko $(vsctl version 2>/dev/null | head -n 1)"
	[ -e $P/accept_by_share ] && echo "# accept_by_share present" || echo "# accept_by_share absent"
	echo "# columns: config site1_connections round site2_rps site2_p99 site2_errors site1_rps site1_p99 site1_errors (p99 as wrk prints it)"
} >>"$RAW"
RULES= PIDS= MODE=none SITE2_PORT=8082
for ROUND in $(seq "$ROUNDS"); do
	say "round $ROUND: starting the servers"
	start_servers || exit 1
	load 1 1 1 >/dev/null # warm up (PHP compiles the script once)
	# Baselines on the shared backend, no vs: site 2 alone, and site 1 alone at full load
	# (the backend's capacity); the first also measures the backend's CPU per request.
	say "round $ROUND: baselines (site 2 alone, site 1 alone at $MAXC connections)"
	tk0=$(worker_ticks)
	load 0 "$C2"
	tk1=$(worker_ticks)
	read -r n2 _ <<<"$(grep ' requests in ' "$W/wrk2.txt")"
	echo "# backend_cpu $((tk1 - tk0)) ticks $(getconf CLK_TCK) hz ${n2:-0} requests" >>"$RAW"
	record alone 0
	say "  site 2 alone: $R2 req/s p99 $L2"
	load "$MAXC" 0
	record capacity "$MAXC"
	say "  site 1 alone at $MAXC: $R1 req/s p99 $L1"
	for cfg in $CONFIGS; do
		say "round $ROUND: $cfg"
		if ! setup_config "$cfg"; then
			say "$cfg: setup failed or skipped"
			teardown_config "$cfg"
			continue
		fi
		for c1 in $LOADS; do
			load "$c1" "$C2"
			record "$cfg" "$c1"
			say "  $cfg c1=$c1: site 2 $R2 req/s p99 $L2 (site 1 $R1 req/s)"
		done
		if [ "$MODE" = vs ]; then
			vsctl stats --json >"$W/stats-$cfg-$ROUND.json" 2>/dev/null &&
				echo "# vsstats $cfg $ROUND $(tr -d '\n' <"$W/stats-$cfg-$ROUND.json")" >>"$RAW"
		fi
		teardown_config "$cfg"
	done
	stop_servers
done
say "done; raw results in $RAW"
