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
say() { echo "fig12: $*" >&2; }

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
		listen 127.0.0.1:808$1;
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

wait_port() { # PORT
	for _ in $(seq 100); do
		ss -Hltn "sport = :$1" | grep -q . && return 0
		sleep 0.1
	done
	say "nothing listens on port $1"
	return 1
}

start_servers() { # CONFIG
	local ports="9000 9000"
	[ "$1" = replicated ] && ports="9000 9001"
	PIDS=
	local n=1
	for port in $(echo "$ports" | tr ' ' '\n' | sort -u); do
		( [ "$MODE" = cgroup ] && join fcgi; exec taskset -c 1 "$FPM" -F -y "$W/fpm$n.conf" ) &
		eval "FPM$n=\$!"
		PIDS="$PIDS $!"
		wait_port "$port" || return 1
		n=$((n + 1))
	done
	set -- $ports
	for i in 1 2; do
		nginx_conf "$i" "$1"
		shift
		( [ "$MODE" = cgroup ] && join "www$i"; exec nginx -c "$W/nginx$i.conf" -e "$W/error$i.log" ) &
		eval "NGINX$i=\$!"
		PIDS="$PIDS $!"
		wait_port "808$i" || return 1
	done
}
stop_servers() {
	kill $PIDS 2>/dev/null
	wait $PIDS 2>/dev/null
	PIDS=
}

# wrk's 99th percentile in ms (wrk prints e.g. "99%  45.12ms", "1.20s", "850.00us").
p99() {
	awk '$1 == "99%" { v = $2; m = 1
		if (v ~ /us$/) m = 0.001; else if (v ~ /ms$/) m = 1; else if (v ~ /m$/) m = 60000; else if (v ~ /s$/) m = 1000
		sub(/[a-z]+$/, "", v); printf "%.2f", v * m; f = 1 }
		END { if (!f) printf "nan" }' "$1"
}
rps() { awk '/^Requests\/sec/ { print $2; f = 1 } END { if (!f) print "nan" }' "$1"; }
# Requests that failed: socket errors (incl. timeouts) and non-2xx answers.
errs() {
	awk '/Socket errors/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 }
		/Non-2xx/ { e += $NF } END { print e + 0 }' "$1"
}

# load C1 C2 [SECS]: wrk on both sites at once (a count of 0 leaves that site idle); each wrk
# joins its site's group. Sets R1 R2 (req/s), L1 L2 (p99 ms), E1 E2 (failed requests).
load() {
	local pids= i c secs=${3:-$DUR}
	for i in 1 2; do
		c=$1
		[ "$i" = 2 ] && c=$2
		rm -f "$W/wrk$i.txt"
		[ "$c" -gt 0 ] || continue
		(
			join "www$i"
			exec wrk -t1 -c"$c" -d"${secs}s" --timeout 10s --latency "http://127.0.0.1:808$i/"
		) >"$W/wrk$i.txt" 2>&1 &
		pids="$pids $!"
	done
	wait $pids
	for i in 1 2; do
		if [ -f "$W/wrk$i.txt" ]; then
			eval "R$i=$(rps "$W/wrk$i.txt") L$i=$(p99 "$W/wrk$i.txt") E$i=$(errs "$W/wrk$i.txt")"
		else
			eval "R$i=- L$i=- E$i=-"
		fi
	done
}
record() { # LABEL C1
	echo "$1 $2 $ROUND $R2 $L2 $E2 $R1 $L1 $E1" >>"$RAW"
}

# The backend's CPU time per request, from its worker's schedstat around one run.
worker_ns() { awk '{ s += $1 } END { print s + 0 }' $(for p in $(pgrep -P "$FPM1"); do echo "/proc/$p/schedstat"; done) 2>/dev/null; }

setup_config() { # CONFIG
	MODE=none
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
		start_servers "$1" || return 1
		vsctl addprocess --tree fcgi "$FPM1" >/dev/null &&
			vsctl addprocess --tree www1 "$NGINX1" >/dev/null &&
			vsctl addprocess --tree www2 "$NGINX2" >/dev/null || return 1
		MODE=vs
		;;
	cgroup)
		if ! grep -q cgroup2 /proc/mounts; then
			mkdir -p $CG && mount -t cgroup2 none $CG || return 1
		fi
		grep -qw cpu $CG/cgroup.subtree_control || echo +cpu >$CG/cgroup.subtree_control || return 1
		for g in www1 www2 fcgi; do
			mkdir -p "$CG/fig12-$g" && echo 100 >"$CG/fig12-$g/cpu.weight" || return 1
		done
		MODE=cgroup
		start_servers "$1" || return 1
		;;
	*)
		start_servers "$1" || return 1
		;;
	esac
}
teardown_config() { # CONFIG
	stop_servers
	case $1 in
	gates | ordered)
		[ -w $P/accept_by_share ] && echo 0 >$P/accept_by_share
		for r in $RULES; do vsctl delrule "$r" >/dev/null; done
		RULES=
		for v in www1 www2 fcgi; do vsctl destroy $v >/dev/null 2>&1; done
		;;
	cgroup)
		for g in www1 www2 fcgi; do rmdir "$CG/fig12-$g" 2>/dev/null; done
		;;
	esac
	MODE=none
	sleep 0.5
}

: >"$RAW"
{
	echo "# kernel $(uname -r) flavour ${VS_KFLAVOUR:-?} cpus $(nproc --all) dur $DUR c2 $C2 burn_ms $BURN_MS rounds $ROUNDS"
	echo "# vs.ko $(vsctl version 2>/dev/null | head -n 1)"
	[ -e $P/accept_by_share ] && echo "# accept_by_share present" || echo "# accept_by_share absent"
	echo "# columns: config site1_connections round site2_rps site2_p99_ms site2_errors site1_rps site1_p99_ms site1_errors"
} >>"$RAW"
RULES= PIDS= MODE=none
t0=$(date +%s)
for ROUND in $(seq "$ROUNDS"); do
	# Baselines on the shared backend, no vs: site 2 alone, and site 1 alone at full load
	# (the backend's capacity); the first also measures the backend's CPU per request.
	say "round $ROUND: baselines (site 2 alone, site 1 alone at $MAXC connections)"
	start_servers none || exit 1
	load 1 1 1 >/dev/null
	ns0=$(worker_ns)
	load 0 "$C2"
	ns1=$(worker_ns)
	n2=$(awk '/requests in/ { print $1 }' "$W/wrk2.txt")
	echo "# backend_cpu_per_request_ms $(awk -v a="$ns0" -v b="$ns1" -v n="${n2:-0}" 'BEGIN { if (n > 0) printf "%.2f", (b - a) / n / 1e6; else print "nan" }')" >>"$RAW"
	record alone 0
	load "$MAXC" 0
	record capacity "$MAXC"
	stop_servers
	for cfg in $CONFIGS; do
		say "round $ROUND: $cfg ($(($(date +%s) - t0)) s so far)"
		if ! setup_config "$cfg"; then
			say "$cfg: setup failed or skipped"
			teardown_config "$cfg"
			continue
		fi
		load 1 1 1 >/dev/null # warm up (PHP compiles the script once)
		for c1 in $LOADS; do
			load "$c1" "$C2"
			record "$cfg" "$c1"
			say "  $cfg c1=$c1: site 2 $R2 req/s p99 $L2 ms (site 1 $R1 req/s)"
		done
		if [ "$MODE" = vs ]; then
			vsctl stats --json >"$W/stats-$cfg-$ROUND.json" 2>/dev/null &&
				echo "# vsstats $cfg $ROUND $(tr -d '\n' <"$W/stats-$cfg-$ROUND.json")" >>"$RAW"
		fi
		teardown_config "$cfg"
	done
done
say "done in $(($(date +%s) - t0)) s; raw results in $RAW"
