#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The vsq qdisc end to end: attaching it (as root, under tbf; options refused), per-VS tx
# counters against what was sent, replace/delete under traffic, a VS destroyed while its
# packets are queued, the per-pool queue limit, the net-share split (also of a nested pool),
# and rmmod with a vsq in place. Traffic goes only through a veth pair into a network namespace this test creates
# (TEST-NET-2 addresses); every test kills its senders, removes its qdisc and destroys its VSs
# (all named vq_*), and the namespace goes on exit. Senders are Python processes moved into a
# VS before they create their socket.
. "$VS_KTAP_HELPERS"
. "$(dirname "$0")/vsctl_lib.sh"

ktap_print_header
ktap_set_plan 11

NS=vsq$$ DEV=vq$$ PEER=vqp$$
SRC=198.51.100.1 DST=198.51.100.2
PARAMS=/sys/module/vs/parameters
LIMIT0=$(cat $PARAMS/vsq_limit)
# Processes started by the running test: killed by reset.
PIDS=()

# send DST PORT COUNT SIZE TOS SECS [MARK]: COUNT datagrams of SIZE bytes (a burst that never
# blocks: the send buffer is forced to 16 MiB), or with COUNT 0 as many as it can for SECS
# seconds (a 2 MiB send buffer, twice the 1 MiB asked for, paces it: it sleeps while about
# 900 of its datagrams are queued, under vsq_limit, and is woken with some 450 still queued). TOS >= 0 sets IP_TOS,
# MARK > 0 SO_MARK. Prints how many it sent.
SEND='
import socket, sys, time
dst, port, n, size, tos, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
mark = int(sys.argv[7]) if len(sys.argv) > 7 else 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if tos >= 0:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
if mark:
    s.setsockopt(socket.SOL_SOCKET, 36, mark)  # SO_MARK
buf, to, sent = bytes(size), (dst, port), 0
if n:
    s.setsockopt(socket.SOL_SOCKET, 32, 16 << 20)  # SO_SNDBUFFORCE
    for _ in range(n):
        s.sendto(buf, to)
        sent += 1
else:
    s.setsockopt(socket.SOL_SOCKET, 32, 1 << 20)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        for _ in range(16):
            s.sendto(buf, to)
        sent += 16
print(sent, flush=True)
'

# sink PORT EXPECT SECS: count datagrams until EXPECT arrived or SECS passed; with EXPECT 0,
# hold the port without reading for SECS (a discard sink: no ICMP errors, no CPU).
SINK='
import socket, sys, time
port, expect, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if expect:
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
s.bind(("0.0.0.0", port))
print("ready", flush=True)
end = time.monotonic() + secs
if not expect:
    time.sleep(secs)
    sys.exit(0)
n = 0
s.settimeout(0.2)
while n < expect and time.monotonic() < end:
    try:
        s.recv(65536)
        n += 1
    except socket.timeout:
        pass
print("got", n, flush=True)
'

# tcp_server PORT: accept one connection, read to EOF, answer with the byte count.
TCP_SERVER='
import socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", int(sys.argv[1])))
l.listen(1)
l.settimeout(60)
print("ready", flush=True)
c, _ = l.accept()
c.settimeout(30)
n = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    n += len(b)
c.sendall(str(n).encode())
c.close()
print("got", n, flush=True)
'

# tcp_client DST PORT STOP: send chunks of 32 KiB, 10 ms apart, until the file STOP exists
# (at most 120 s), then print the bytes sent and the count the server read.
TCP_CLIENT='
import os, socket, sys, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
buf, sent, end = bytes(32768), 0, time.monotonic() + 120
while not os.path.exists(sys.argv[3]) and time.monotonic() < end:
    c.sendall(buf)
    sent += len(buf)
    time.sleep(0.01)
c.shutdown(socket.SHUT_WR)
r = b""
while True:
    b = c.recv(64)
    if not b:
        break
    r += b
print(sent, r.decode(), flush=True)
'

# nl_opts DEV PARENT: ask for a vsq with options (TCA_OPTIONS) over rtnetlink, which tc
# cannot send for a qdisc it does not know; print the error and the extended ack message.
NL_OPTS='
import socket, struct, sys
ifindex, parent = socket.if_nametoindex(sys.argv[1]), int(sys.argv[2], 16)
def attr(t, data):
    n = 4 + len(data)
    return struct.pack("HH", n, t) + data + bytes((4 - n % 4) % 4)
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.setsockopt(270, 11, 1)  # SOL_NETLINK, NETLINK_EXT_ACK
body = struct.pack("BBHiIII", 0, 0, 0, ifindex, 0, parent, 0)  # struct tcmsg
body += attr(1, b"vsq\0") + attr(2, attr(1, struct.pack("I", 5)))  # TCA_KIND, TCA_OPTIONS
# RTM_NEWQDISC; NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
s.send(struct.pack("IHHII", 16 + len(body), 36, 0x1 | 0x4 | 0x200 | 0x400, 1, 0) + body)
r = s.recv(65536)
length, typ, flags = struct.unpack_from("IHH", r)
err = struct.unpack_from("i", r, 16)[0] if typ == 2 else None
# After the error code: the request (only its header if NLM_F_CAPPED), then the TLVs.
off = 20 + (16 if flags & 0x100 else struct.unpack_from("I", r, 20)[0])
text = ""
while off + 4 <= length:
    n, t = struct.unpack_from("HH", r, off)
    if n < 4:
        break
    if t == 1:  # NLMSGERR_ATTR_MSG
        text = r[off + 4:off + n].rstrip(b"\0").decode()
    off += (n + 3) & ~3
print(err, text)
'

# in_vs VS CMD...: run CMD in VS (moved there before it starts, so its sockets are tagged).
in_vs() {
	local vs=$1
	shift
	(
		vsctl addprocess "$vs" "$BASHPID" >/dev/null || exit 1
		exec "$@"
	)
}

# sender VS COUNT SIZE [SECS]: send from VS (root: unclassified) to the sink port $PORT.
sender() {
	if [ "$1" = root ]; then
		timeout 60 "$PY" -c "$SEND" "$DST" "$PORT" "$2" "$3" -1 "${4:-0}"
	else
		in_vs "$1" timeout 60 "$PY" -c "$SEND" "$DST" "$PORT" "$2" "$3" -1 "${4:-0}"
	fi
}

# spawn VS CMD...: start CMD in the background in VS (root: unclassified); its pid, which a
# kill reaches (no shell in between), is in $LAST and in PIDS.
spawn() {
	local vs=$1
	shift
	{
		[ "$vs" = root ] || vsctl addprocess "$vs" "$BASHPID" >/dev/null || exit 1
		exec "$@"
	} &
	LAST=$!
	PIDS+=("$LAST")
}

# flood VS: send 1000-byte datagrams to $PORT from VS in the background until killed (at most
# 300 s: TCG on a loaded host can be very slow).
flood() {
	spawn "$1" timeout 300 "$PY" -c "$SEND" "$DST" "$PORT" 0 1000 -1 300
}

# sink_start EXPECT SECS: a sink on $PORT in the namespace; its output is in $SINK_OUT.
sink_start() {
	SINK_OUT=$(mktemp)
	ip netns exec "$NS" "$PY" -c "$SINK" "$PORT" "$1" "$2" >"$SINK_OUT" 2>&1 &
	SINK_PID=$!
	PIDS+=("$SINK_PID")
	local _
	for _ in $(seq 150); do grep -q ready "$SINK_OUT" && return 0; sleep 0.1; done
	ktap_print_msg "sink did not start: $(cat "$SINK_OUT")"
	return 1
}

# sink_wait: wait for the counting sink to end; what it received is in $SINK_GOT. Not run in a
# command substitution: that subshell cannot wait for its parent's child, and would read the
# sink's output before it is written.
sink_wait() {
	local rc=0
	wait "$SINK_PID" || rc=$?
	SINK_GOT=$(sed -n 's/^got //p' "$SINK_OUT")
	[ -n "$SINK_GOT" ] || ktap_print_msg "the sink ended ($rc) without a count: $(cat "$SINK_OUT")"
}

# tx VS: "tx_packets tx_bytes tx_drops" of VS (from the text output: no Python, which is
# slow to start under TCG).
tx() {
	vsctl stats "$1" | awk '/^tx packets / { p = $3 } /^tx bytes / { b = $3 } /^tx drops / { d = $3 }
		END { print p, b, d }'
}

# sending VS...: wait (at most 30 s) until every VS has sent a packet.
sending() {
	local v _ all
	for _ in $(seq 300); do
		all=1
		for v; do
			[ "$(tx "$v" | cut -d' ' -f1)" -gt 0 ] || all=0
		done
		[ $all = 1 ] && return 0
		sleep 0.1
	done
	ktap_print_msg "not every one of $* is sending"
	return 1
}

# The packets the vsq on $DEV has queued (the qdisc's qlen), empty if there is none.
vsq_backlog() {
	tc -s qdisc show dev "$DEV" | awk '$1 == "qdisc" { v = ($2 == "vsq") }
		v && $1 == "backlog" { sub("p", "", $3); print $3; exit }'
}

# drained: wait (at most 15 s) until the vsq on $DEV has nothing queued.
drained() {
	local _
	for _ in $(seq 150); do
		[ "$(vsq_backlog)" = 0 ] && return 0
		sleep 0.1
	done
	ktap_print_msg "vsq still has $(vsq_backlog) packets queued"
	return 1
}

# shaped RATE BURST: tbf at RATE as $DEV's root, vsq as its child.
shaped() {
	tc qdisc replace dev "$DEV" root handle 1: tbf rate "$1" burst "$2" latency 100ms &&
		tc qdisc add dev "$DEV" parent 1:1 vsq
}

# Kill what the test started, remove the qdisc, restore the limit, destroy the test's VSs.
reset() {
	local p v
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	PIDS=()
	rm -f "${SINK_OUT:-}" "${TCP_OUT:-}"
	[ -d $PARAMS ] || insmod "$VS_KO" || ktap_print_msg "reset: cannot load $VS_KO"
	ip link show "$DEV" >/dev/null 2>&1 && tc qdisc del dev "$DEV" root 2>/dev/null
	tc qdisc del dev lo root 2>/dev/null
	echo "$LIMIT0" >$PARAMS/vsq_limit
	# Children first: the list has a parent before its children.
	for v in $(vsctl list 2>/dev/null | grep -oE 'vq_[a-z0-9]+' | tac); do vsctl destroy "$v" >/dev/null; done
}
cleanup() {
	reset
	ip netns del "$NS" 2>/dev/null
	ip link del "$DEV" 2>/dev/null
	rm -f "$ERR"
}
trap cleanup EXIT

# t NAME FUNCTION: run one test, then clean up whatever it left.
t() {
	local t0=$SECONDS
	ktap_test_result "$1" "$2"
	reset
	ktap_print_msg "$1: $((SECONDS - t0)) s"
}

# --- the namespace and the veth pair ---

setup() {
	local peer_mac dev_mac
	ip netns add "$NS" && ip link add "$DEV" type veth peer name "$PEER" &&
		ip link set "$PEER" netns "$NS" || return 1
	# No IPv6 and static neighbours: nothing but the tests' datagrams leaves $DEV.
	echo 1 >/proc/sys/net/ipv6/conf/"$DEV"/disable_ipv6
	ip netns exec "$NS" sh -c "echo 1 >/proc/sys/net/ipv6/conf/$PEER/disable_ipv6"
	ip addr add $SRC/24 dev "$DEV" && ip link set "$DEV" up &&
		ip -n "$NS" addr add $DST/24 dev "$PEER" && ip -n "$NS" link set "$PEER" up &&
		ip -n "$NS" link set lo up || return 1
	peer_mac=$(ip -n "$NS" -br link show "$PEER" | awk '{ print $3 }')
	dev_mac=$(ip -br link show "$DEV" | awk '{ print $3 }')
	ip neigh replace $DST lladdr "$peer_mac" dev "$DEV" nud permanent &&
		ip -n "$NS" neigh replace $SRC lladdr "$dev_mac" dev "$PEER" nud permanent
}
if ! ktap_test_result "veth_pair_into_a_namespace" setup; then
	ktap_exit_fail_msg "no network namespace with a veth pair"
fi

# --- 1. attaching ---

attach() {
	local out
	tc qdisc add dev "$DEV" root vsq || return 1
	out=$(tc -s qdisc show dev "$DEV")
	grep -qE '^qdisc vsq [0-9a-f]+: root' <<<"$out" && grep -q '^ Sent ' <<<"$out" ||
		{ ktap_print_msg "as root:"; sed 's/^/# /' <<<"$out"; return 1; }
	tc qdisc del dev "$DEV" root || return 1
	shaped 10mbit 32k || return 1
	out=$(tc -s qdisc show dev "$DEV")
	grep -qE '^qdisc tbf 1: root' <<<"$out" && grep -qE '^qdisc vsq [0-9a-f]+: parent 1:1' <<<"$out" ||
		{ ktap_print_msg "under tbf:"; sed 's/^/# /' <<<"$out"; return 1; }
	# replace and del work too.
	tc qdisc replace dev "$DEV" parent 1:1 pfifo && tc qdisc replace dev "$DEV" parent 1:1 vsq &&
		tc qdisc del dev "$DEV" root && tc qdisc replace dev "$DEV" root vsq &&
		tc qdisc show dev "$DEV" | grep -qE '^qdisc vsq [0-9a-f]+: root' &&
		tc qdisc del dev "$DEV" root &&
		! tc qdisc show dev "$DEV" | grep -q vsq
}
t "vsq_attaches_as_root_and_as_tbf_child" attach

options() {
	local msg="vsq takes no options: shares come from /dev/vs, knobs are module parameters"
	want "options, as root" "$("$PY" -c "$NL_OPTS" "$DEV" ffffffff)" "-22 $msg" || return 1
	tc qdisc add dev "$DEV" root handle 1: tbf rate 10mbit burst 32k latency 100ms || return 1
	want "options, as tbf's child" "$("$PY" -c "$NL_OPTS" "$DEV" 10001)" "-22 $msg" || return 1
	# Nothing was installed.
	if tc qdisc show dev "$DEV" | grep -q vsq; then
		ktap_print_msg "a vsq was installed:"
		tc qdisc show dev "$DEV" | sed 's/^/# /'
		return 1
	fi
}
t "vsq_refuses_options_with_einval" options

# --- 2. counters ---

counters() {
	local a g root0 root1 got
	PORT=9001
	a=$(vsctl create vq_a) && vsctl create vq_g --id 7 >/dev/null || return 1
	tc qdisc add dev "$DEV" root vsq && sink_start 200 30 || return 1
	root0=$(tx root)
	sender vq_a 120 700 >/dev/null && sender vq_g 80 1200 >/dev/null || return 1
	sink_wait
	got=$SINK_GOT
	drained || return 1
	root1=$(tx root)
	ktap_print_msg "vq_a (id $a): $(tx vq_a), vq_g (id 7): $(tx vq_g), root before/after: $root0 / $root1; sink got $got"
	want "sink received" "$got" 200 &&
		want "vq_a: packets bytes drops" "$(tx vq_a)" "120 $((120 * 742)) 0" &&
		want "vq_g: packets bytes drops" "$(tx vq_g)" "80 $((80 * 1242)) 0" &&
		want "root's packets charged for them" "$((${root1%% *} - ${root0%% *}))" 0
}
t "tx_counters_of_local_and_global_vs_match_what_was_sent" counters

# Untagged packets: the socket's SO_MARK (set by the user), else the DSCP of a global VSID.
untagged() {
	local a got
	PORT=9002
	a=$(vsctl create vq_a) && vsctl create vq_g --id 7 >/dev/null || return 1
	tc qdisc add dev "$DEV" root vsq && sink_start 50 30 || return 1
	# From an unclassified task: TOS with DSCP 7, and a socket marked with vq_a's VSID.
	timeout 60 "$PY" -c "$SEND" "$DST" "$PORT" 30 500 $((7 << 2)) 0 >/dev/null &&
		timeout 60 "$PY" -c "$SEND" "$DST" "$PORT" 20 400 -1 0 "$a" >/dev/null || return 1
	sink_wait
	got=$SINK_GOT
	drained || return 1
	want "sink received" "$got" 50 &&
		want "vq_g (DSCP 7): packets bytes drops" "$(tx vq_g)" "30 $((30 * 542)) 0" &&
		want "vq_a (SO_MARK $a): packets bytes drops" "$(tx vq_a)" "20 $((20 * 442)) 0"
}
t "untagged_packets_classified_by_so_mark_and_dscp" untagged

# --- 3. replace and delete under traffic ---

under_traffic() {
	local out stop client n sent before
	PORT=9003
	# Two net pools, both with packets queued when their vsq goes.
	vsctl create vq_stream --net-share 50 >/dev/null && vsctl create vq_flood --net-share 50 >/dev/null || return 1
	shaped 20mbit 32k || return 1
	TCP_OUT=$(mktemp)
	ip netns exec "$NS" timeout 200 "$PY" -c "$TCP_SERVER" "$PORT" >"$TCP_OUT" 2>&1 &
	PIDS+=($!)
	for n in $(seq 150); do grep -q ready "$TCP_OUT" && break; sleep 0.1; done
	# A discard sink for the flood, which keeps vsq's queues full while they are swapped out.
	PORT=9004 sink_start 0 300 || return 1
	PORT=9004 flood vq_flood >/dev/null
	# The stream runs until every tc command is done.
	out=$(mktemp)
	stop=$out.stop
	spawn vq_stream timeout 200 "$PY" -c "$TCP_CLIENT" "$DST" "$PORT" "$stop" >"$out" 2>&1
	client=$LAST
	sending vq_stream vq_flood || return 1
	tc qdisc replace dev "$DEV" parent 1:1 pfifo && sleep 0.2 &&
		tc qdisc replace dev "$DEV" parent 1:1 vsq && sleep 0.2 &&
		tc qdisc del dev "$DEV" root && sleep 0.2 &&
		tc qdisc add dev "$DEV" root vsq && sleep 0.2 &&
		tc qdisc replace dev "$DEV" root pfifo && sleep 0.2 &&
		tc qdisc replace dev "$DEV" root vsq && sleep 0.2 &&
		tc qdisc del dev "$DEV" root && shaped 20mbit 32k ||
		{ ktap_print_msg "a tc command failed"; touch "$stop"; return 1; }
	kill -0 "$client" 2>/dev/null || ktap_print_msg "the stream ended before the last tc command"
	touch "$stop"
	wait "$client"
	read -r sent n <"$out"
	ktap_print_msg "stream: sent $sent, server read $n; vq_stream $(tx vq_stream), vq_flood $(tx vq_flood)"
	if ! [[ "$sent" =~ ^[0-9]+$ ]] || [ "$sent" = 0 ] || [ "$n" != "$sent" ]; then
		ktap_print_msg "client: $(tr '\n' '|' <"$out")"
		ktap_print_msg "server: $(tr '\n' '|' <"$TCP_OUT")"
		tc -s qdisc show dev "$DEV" | sed 's/^/# /'
		rm -f "$out" "$stop"
		return 1
	fi
	rm -f "$out" "$stop"
	# Still working: a new burst through the last vsq is counted.
	kill "${PIDS[@]}" 2>/dev/null
	drained || return 1
	before=$(tx vq_stream)
	PORT=9004 sender vq_stream 10 100 >/dev/null && drained &&
		want "vq_stream packets after 10 more" "$(($(tx vq_stream | cut -d' ' -f1) - ${before%% *}))" 10
}
t "replace_and_delete_under_traffic" under_traffic

# --- 4. a VS destroyed while its packets are queued ---

destroy_queued() {
	local q x got
	PORT=9005
	vsctl create vq_x --id 4242 >/dev/null || return 1
	# 100 kbit/s: the 300 datagrams would take 25 s; once checked, the rate goes up.
	shaped 100kbit 10k && sink_start 300 60 || return 1
	sender vq_x 300 1000 >/dev/null || return 1
	x=$(tx vq_x)
	vsctl destroy vq_x && vsctl create vq_y --id 4242 >/dev/null || return 1
	q=$(vsq_backlog)
	ktap_print_msg "vq_x had sent $x when destroyed; $q packets still queued after vq_y (same id) was created"
	[ "${q:-0}" -gt 0 ] || { ktap_print_msg "the queue had drained already: nothing tested"; return 1; }
	tc qdisc change dev "$DEV" root handle 1: tbf rate 100mbit burst 32k latency 100ms || return 1
	sink_wait
	got=$SINK_GOT
	drained || return 1
	want "sink received" "$got" 300 &&
		want "vq_y: packets bytes drops" "$(tx vq_y)" "0 0 0" || return 1
	# Again, but the queued packets are purged (qdisc deleted) after the destroy.
	vsctl destroy vq_y && vsctl create vq_x --id 4242 >/dev/null &&
		tc qdisc change dev "$DEV" root handle 1: tbf rate 100kbit burst 10k latency 100ms || return 1
	sender vq_x 100 1000 >/dev/null && vsctl destroy vq_x &&
		vsctl create vq_y --id 4242 >/dev/null || return 1
	q=$(vsq_backlog)
	tc qdisc del dev "$DEV" root || return 1
	ktap_print_msg "purged $q queued packets"
	[ "${q:-0}" -gt 0 ] && want "vq_y after the purge: packets bytes drops" "$(tx vq_y)" "0 0 0"
}
t "destroy_vs_with_packets_queued_new_vs_not_charged" destroy_queued

# --- 5. the queue limit ---

limit() {
	local c p b d
	PORT=9006
	vsctl create vq_lim >/dev/null || return 1
	echo 20 >$PARAMS/vsq_limit || return 1
	shaped 1mbit 5k && sink_start 0 30 || return 1
	sender vq_lim 200 1000 >/dev/null || return 1
	drained || return 1
	c=$(tx vq_lim)
	read -r p b d <<<"$c"
	ktap_print_msg "vq_lim: $c; $(tc -s qdisc show dev "$DEV" | grep -A1 '^qdisc vsq' | tail -1)"
	[ "$d" -gt 0 ] || { ktap_print_msg "no drops at vsq_limit 20"; return 1; }
	want "tx_packets + tx_drops" $((p + d)) 200 && want "tx_bytes" "$b" $((p * 1042))
}
t "queue_limit_drops_counted" limit

# --- 7. the net-share split ---

# Low enough for two Python senders under TCG to keep both queues full.
RATE=${VS_VSQ_RATE:-5mbit}

# split_of A B: flood from VSs A and B through tbf $RATE for 3 s; A's part of the bytes both
# sent (0..1) is in $SPLIT. Not run in a command substitution: its senders are this shell's.
split_of() {
	local s0 s1 t0 t1 r fa fb
	shaped "$RATE" 16k && sink_start 0 300 || return 1
	flood "$1" >/dev/null
	fa=$LAST
	flood "$2" >/dev/null
	fb=$LAST
	sending "$1" "$2" || return 1
	sleep 0.5
	t0=$(date +%s.%N)
	s0="$(tx "$1") $(tx "$2")"
	sleep 3
	t1=$(date +%s.%N)
	s1="$(tx "$1") $(tx "$2")"
	kill -0 "$fa" && kill -0 "$fb" || { ktap_print_msg "a sender ended early"; return 1; }
	# Fields: packets bytes drops, A then B.
	r=$(awk -v a="$s0" -v b="$s1" -v t0="$t0" -v t1="$t1" 'BEGIN {
		split(a, x); split(b, y)
		h = y[2] - x[2]; l = y[5] - x[5]
		printf "%.3f %.2f", (h + l) ? h / (h + l) : 0, (h + l) * 8 / (t1 - t0) / 1e6 }')
	ktap_print_msg "$1's part of the bytes: ${r% *}, total ${r#* } Mbit/s through tbf $RATE; before: $s0, after: $s1"
	SPLIT=${r% *}
}

split() {
	PORT=9007
	vsctl create vq_s70 --net-share 70 >/dev/null && vsctl create vq_s30 --net-share 30 >/dev/null || return 1
	split_of vq_s70 vq_s30 || return 1
	awk -v s="$SPLIT" 'BEGIN { exit !(s >= 0.6 && s <= 0.8) }'
}
t "net_shares_70_30_split_the_bandwidth" split

# A pool's own part is what the shares drawn from it leave, also those drawn through a VS
# without a share of its own: vq_x (80 % of vq_p's pool, through vq_m, which keeps vq_p's)
# leaves vq_p's own tasks 20 %. Counting only vq_p's direct children would leave them all of
# vq_p's 60 % against vq_x's 48 %: 0.56 of the bytes.
pool_split() {
	PORT=9009
	vsctl create vq_p --net-share 60 >/dev/null && vsctl create vq_m --parent vq_p >/dev/null &&
		vsctl create vq_x --parent vq_m --net-share 80 >/dev/null || return 1
	split_of vq_p vq_x || return 1
	awk -v s="$SPLIT" 'BEGIN { exit !(s >= 0.1 && s <= 0.3) }'
}
t "net_pool_own_part_is_what_the_shares_drawn_from_it_leave" pool_split

# --- 6. rmmod (last: it unloads and reloads the module) ---

rmmod_in_use() {
	local out ref
	PORT=9008
	shaped 10mbit 32k && tc qdisc add dev lo root vsq || return 1
	ref=$(cat /sys/module/vs/refcnt)
	if out=$(rmmod vs 2>&1); then
		ktap_print_msg "rmmod succeeded with two vsq installed"
		insmod "$VS_KO"
		return 1
	fi
	ktap_print_msg "rmmod: $out (refcnt $ref)"
	grep -q "Module vs is in use" <<<"$out" || return 1
	want "module references with two vsq" "$ref" 2 || return 1
	# Still loaded and working: a VS's burst through the vsq is counted.
	[ -c /dev/vs ] && vsctl version >/dev/null && vsctl create vq_m >/dev/null || return 1
	sink_start 0 30 && sender vq_m 10 100 >/dev/null && drained &&
		want "vq_m after rmmod failed" "$(tx vq_m)" "10 1420 0" || return 1
	tc qdisc del dev lo root || return 1
	rmmod vs 2>/dev/null && { insmod "$VS_KO"; ktap_print_msg "rmmod succeeded with one vsq left"; return 1; }
	vsctl destroy vq_m >/dev/null && tc qdisc del dev "$DEV" root || return 1
	want "module references" "$(cat /sys/module/vs/refcnt)" 0 || return 1
	rmmod vs || return 1
	[ ! -e /dev/vs ] || { ktap_print_msg "/dev/vs still there after rmmod"; return 1; }
	# vsq is gone with the module.
	tc qdisc add dev "$DEV" root vsq 2>/dev/null && { ktap_print_msg "vsq added without the module"; return 1; }
	insmod "$VS_KO" && vsctl version >/dev/null && tc qdisc add dev "$DEV" root vsq
}
t "rmmod_refused_while_vsq_installed" rmmod_in_use

ktap_finished
