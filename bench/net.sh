#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Network share accuracy, run inside the guest by `make bench-net`. TCP senders in 2 VSs (net
# shares 70/30) and in 3 VSs (50/30/20), VS A with 1 flow and every other VS with 4, through a
# veth bottleneck into a network namespace "rx" whose sink counts the bytes of each VS (one
# port per VS) every 200 ms. Each scenario runs, in this boot and on the same load, under:
#   vsq      tbf (the bottleneck) with vsq as its child: vs's own net-share qdisc
#   htb      HTB, one class per VS (rate = share x bottleneck, ceil = bottleneck), fw filter on
#            the socket mark vs sets (sk_mark = VSID): what a user writes today
#   fq_codel tbf + fq_codel: flow-fair, so 4 flows beat 1
#   pfifo    tbf + pfifo: no control
# then an unshaped flood through pfifo and vsq (no tbf) for vsq's cost per packet.
# Samples go to .cache/bench-net.txt; bench/net_report.py (run by make, on the host) turns them
# into docs/bench-net.md and docs/net-shares.png.
set -uo pipefail
cd "$VS_ROOT" || exit 1
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
RATE=${RATE:-12}          # bottleneck, mbit/s: low enough that the 1-flow VS can fill its 70 % under TCG on a busy host
SECS=${SECS:-10}          # per configuration
FLOOD_SECS=${FLOOD_SECS:-5}
CONFS=${CONFS:-vsq htb fq_codel pfifo}
OUT=.cache/bench-net.txt
W=/tmp/vs-net
DEV=vb0 PEER=vb1 NS=rx SRC=10.77.0.1 DST=10.77.0.2 PORT0=5301
mkdir -p .cache
rm -rf "$W" && mkdir -p "$W"
: >"$OUT"
say() { echo "bench-net: $*" >&2; }
rec() { echo "$*" >>"$OUT"; }

VSS=() # the current scenario's VS names
cleanup() {
	[ -n "${SINK:-}" ] && kill "$SINK" 2>/dev/null
	for p in ${SENDERS:-}; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	tc qdisc del dev $DEV root 2>/dev/null
	ip link del $DEV 2>/dev/null
	ip netns del $NS 2>/dev/null
	for v in "${VSS[@]}"; do vsctl destroy "$v" >/dev/null 2>&1; done
}
trap cleanup EXIT

ip netns add $NS &&
	ip link add $DEV type veth peer name $PEER &&
	ip link set $PEER netns $NS &&
	ip addr add $SRC/24 dev $DEV && ip link set $DEV up &&
	ip -n $NS addr add $DST/24 dev $PEER && ip -n $NS link set $PEER up &&
	ip -n $NS link set lo up || { say "network setup failed"; exit 1; }
# TSO/GSO stay on, as on a real host: qdiscs see TCP's GSO packets (up to 64 KB) and vsq, HTB
# and the FIFOs count their bytes. NET_GSO=off makes TCP send one MTU-sized segment per packet
# (gso_max_segs 1), at several times the guest CPU per byte.
GSO=on
if [ "${NET_GSO:-on}" = off ]; then
	ip link set dev $DEV gso_max_segs 1 && GSO=off || say "note: could not set gso_max_segs: GSO stays on"
fi
# Both ends up (carrier) before any test, bounded.
for n in $(seq 50); do
	[ "$(cat /sys/class/net/$DEV/operstate)" = up ] && break
	sleep 0.1
done

# Busy and softirq CPU time (ns, all CPUs) from /proc/stat.
cpu_ns() {
	awk -v hz="$(getconf CLK_TCK)" '/^cpu / {
		busy = $2 + $3 + $4 + $7 + $8; printf "%.0f %.0f\n", busy * 1e9 / hz, $8 * 1e9 / hz }' /proc/stat
}
# "bytes packets drops" the root qdisc of $DEV sent and dropped (tc -s, first "Sent" line).
qdisc_counts() {
	tc -s qdisc show dev $DEV | awk '/Sent/ && !done { gsub("[(),]", ""); for (i = 1; i <= NF; i++) {
		if ($i == "Sent") b = $(i + 1); if ($i == "pkt") p = $(i - 1); if ($i == "dropped") d = $(i + 1) }
		print b, p, d; done = 1 }'
}

# qdisc CONF [unshaped]: install configuration CONF as the root of $DEV.
qdisc() {
	local conf=$1 shaped=${2:-yes} i rate
	tc qdisc del dev $DEV root 2>/dev/null
	if [ "$conf" = htb ]; then
		# r2q 100: quanta of 10-90 KB at 8-70 mbit, inside HTB's sane range.
		tc qdisc add dev $DEV root handle 1: htb default 99 r2q 100 &&
			tc class add dev $DEV parent 1: classid 1:1 htb rate ${RATE}mbit ceil ${RATE}mbit &&
			tc class add dev $DEV parent 1:1 classid 1:99 htb rate 100kbit ceil ${RATE}mbit || return 1
		for i in "${!VSS[@]}"; do
			rate=$((SHARES[i] * RATE * 10))kbit
			tc class add dev $DEV parent 1:1 classid 1:$((10 + i)) htb rate "$rate" ceil ${RATE}mbit &&
				tc filter add dev $DEV parent 1: protocol ip prio 1 handle "${IDS[i]}" fw classid 1:$((10 + i)) || return 1
		done
		return 0
	fi
	if [ "$shaped" = yes ]; then
		tc qdisc add dev $DEV root handle 1: tbf rate ${RATE}mbit burst 64k latency 100ms &&
			tc qdisc add dev $DEV parent 1:1 "$conf"
	else
		tc qdisc add dev $DEV root "$conf"
	fi
}

# load SCEN CONF SECS: the scenario's senders against the sink for SECS seconds; appends the
# samples ("sample SCEN CONF t_ms VS share bytes") and the CPU time to $OUT.
load() {
	local scen=$1 conf=$2 secs=$3 i ports="" n c0 c1 q t0 t1
	rm -f "$W"/go "$W"/ready.* "$W"/sink.txt
	for i in "${!VSS[@]}"; do ports+="${ports:+,}$((PORT0 + i))"; done
	ip netns exec $NS "$PY" bench/net_load.py sink $DST "$ports" "$secs" 0.2 >"$W/sink.txt" 2>"$W/sink.err" &
	SINK=$!
	for n in $(seq 100); do grep -q ready "$W/sink.txt" 2>/dev/null && break; sleep 0.1; done
	grep -q ready "$W/sink.txt" || { say "$scen/$conf: sink did not start: $(cat "$W/sink.err")"; return 1; }
	SENDERS=""
	for i in "${!VSS[@]}"; do
		# Join the VS first, so that the sender's sockets are born in it (sk_mark = VSID).
		(
			vsctl addprocess "${VSS[i]}" $BASHPID >/dev/null || exit 1
			exec "$PY" bench/net_load.py send $DST $((PORT0 + i)) "${FLOWS[i]}" $((secs + 3)) "$W/go" "$W/ready.$i"
		) 2>>"$W/send.err" &
		SENDERS+=" $!"
	done
	for n in $(seq 200); do [ "$(ls "$W"/ready.* 2>/dev/null | wc -l)" -eq "${#VSS[@]}" ] && break; sleep 0.1; done
	[ "$(ls "$W"/ready.* 2>/dev/null | wc -l)" -eq "${#VSS[@]}" ] || { say "$scen/$conf: senders did not connect: $(tail -n 3 "$W/send.err")"; return 1; }
	read -r c0 s0 <<<"$(cpu_ns)"
	t0=$(date +%s%N)
	touch "$W/go"
	# The sink stops SECS after its first byte; bounded wait (SECS + 30 s) for it.
	for n in $(seq $(((secs + 30) * 10))); do kill -0 "$SINK" 2>/dev/null || break; sleep 0.1; done
	kill "$SINK" 2>/dev/null
	wait "$SINK"
	t1=$(date +%s%N)
	read -r c1 s1 <<<"$(cpu_ns)"
	q=$(qdisc_counts)
	for p in $SENDERS; do kill "$p" 2>/dev/null; done
	wait $SENDERS 2>/dev/null
	SINK="" SENDERS=""
	if ! grep -qE '^[0-9]+ ' "$W/sink.txt"; then
		say "$scen/$conf: the sink recorded nothing: $(tail -n 2 "$W/sink.err" | tr '\n' ' ')"
		rec "note $scen $conf the sink recorded nothing: $(tail -n 1 "$W/sink.err")"
	fi
	{ echo "== $scen $conf"; cat "$W/sink.err"; } >>"$W/errors.log"
	awk -v s="$scen" -v c="$conf" -v names="${VSS[*]}" -v shares="${SHARES[*]}" '
		BEGIN { nv = split(names, nm, " "); split(shares, sh, " ") }
		$1 ~ /^[0-9]+$/ { for (i = 1; i <= nv; i++) print "sample", s, c, $1, nm[i], sh[i], $(i + 1) }' \
		"$W/sink.txt" >>"$OUT"
	rec "cpu $scen $conf $((c1 - c0)) $((s1 - s0)) $((t1 - t0)) $q"
	if [ "$conf" = vsq ]; then
		vsctl stats --json >"$W/stats.json" 2>/dev/null &&
			"$PY" -c 'import json, sys
names = sys.argv[2:]
for e in json.load(open(sys.argv[1])):
    if e["name"] in names:
        st = e["stats"]
        print("vsstats", e["name"], st.get("tx_bytes", 0), st.get("tx_packets", 0), st.get("tx_drops", 0))' \
				"$W/stats.json" "${VSS[@]}" | sed "s/^vsstats /vsstats $scen $conf /" >>"$OUT"
	fi
	return 0
}

# scenario SCEN "SHARES" "FLOWS": create the VSs (A, B, ...), run every configuration, destroy.
scenario() {
	local scen=$1 i conf letters=(A B C D)
	read -ra SHARES <<<"$2"
	read -ra FLOWS <<<"$3"
	VSS=() IDS=()
	for i in "${!SHARES[@]}"; do
		VSS+=("net${letters[i]}")
		IDS+=("$(vsctl create "net${letters[i]}" --net-share "${SHARES[i]}")") || { say "vsctl create failed"; return 1; }
		rec "vs $scen net${letters[i]} ${SHARES[i]} ${FLOWS[i]} ${IDS[i]}"
	done
	for conf in $CONFS; do
		if ! err=$(qdisc "$conf" 2>&1); then
			say "$scen/$conf: cannot install the qdisc: $err"
			rec "note $scen $conf cannot install the qdisc: $(echo "$err" | head -n 1)"
			continue
		fi
		say "$scen/$conf: ${SHARES[*]} % with ${FLOWS[*]} flows, ${RATE} mbit, ${SECS} s"
		load "$scen" "$conf" "$SECS" || rec "note $scen $conf the run failed"
		tc -s qdisc show dev $DEV | sed "s/^/# $scen $conf: /" >>"$W/tc.log"
		tc qdisc del dev $DEV root 2>/dev/null
		sleep 1
	done
	for i in "${!VSS[@]}"; do vsctl destroy "${VSS[i]}" >/dev/null; done
	VSS=()
}

rec "config rate_mbit $RATE secs $SECS gso $GSO cpus $(nproc) kernel $(uname -r) flavour ${VS_KFLAVOUR:-?}"
SCENARIOS=${SCENARIOS:-two three}
[[ " $SCENARIOS " = *" two "* ]] && scenario two "70 30" "1 4"
[[ " $SCENARIOS " = *" three "* ]] && scenario three "50 30 20" "1 4 4"

# vsq's own cost: the three-VS load unshaped (CPU-bound), pfifo and vsq alternately, twice.
if [ "${FLOOD_SECS}" -gt 0 ]; then
	SHARES=(50 30 20) FLOWS=(1 4 4) VSS=() IDS=()
	for l in A B C; do VSS+=("net$l"); done
	for i in 0 1 2; do
		IDS+=("$(vsctl create "${VSS[i]}" --net-share "${SHARES[i]}")")
		rec "vs flood ${VSS[i]} ${SHARES[i]} ${FLOWS[i]} ${IDS[i]}"
	done
	for round in 1 2; do
		for conf in pfifo vsq; do
			if ! err=$(qdisc "$conf" no 2>&1); then
				rec "note flood $conf cannot install the qdisc: $(echo "$err" | head -n 1)"
				continue
			fi
			say "flood/$conf round $round: unshaped, ${FLOOD_SECS} s"
			load flood "$conf$round" "$FLOOD_SECS" || rec "note flood $conf$round the run failed"
			tc qdisc del dev $DEV root 2>/dev/null
			sleep 1
		done
	done
fi
cp "$W/tc.log" .cache/bench-net-tc.log 2>/dev/null
cp "$W/errors.log" .cache/bench-net-errors.log 2>/dev/null
cat "$W/send.err" >>.cache/bench-net-errors.log 2>/dev/null
say "samples in $OUT"
