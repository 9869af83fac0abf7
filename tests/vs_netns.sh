#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The requester's VS across network namespaces: two namespaces joined by a veth pair
# (addresses from TEST-NET-1, inside namespaces this test creates). Clients connect from one;
# the server in local VS fcgi accepts in the other and is reclassified by the accept rules to
# the client's VS. The client is on this host, so the module takes its VS from the client's
# own socket, found in the other namespace (the DSCP of its packets is only trusted for a
# client on another host): a forged DSCP does not count, and a local VSID (64 and up, which
# DSCP cannot carry) does.
. "$VS_KTAP_HELPERS"

ktap_print_header
ktap_set_plan 5

A=vsA$$ B=vsB$$ PORT=8080
cleanup() {
	ip netns del "$A" 2>/dev/null
	ip netns del "$B" 2>/dev/null
	vsctl delrule "$RULE" >/dev/null 2>&1
	[ -n "${RULE_ANY:-}" ] && vsctl delrule "$RULE_ANY" >/dev/null 2>&1
	for v in fcgi www1 www2 site; do vsctl destroy "$v" >/dev/null 2>&1; done
}
trap cleanup EXIT

setup() {
	ip netns add "$A" && ip netns add "$B" &&
		ip link add vethA type veth peer name vethB &&
		ip link set vethA netns "$A" && ip link set vethB netns "$B" &&
		ip -n "$A" addr add 192.0.2.1/24 dev vethA && ip -n "$B" addr add 192.0.2.2/24 dev vethB &&
		ip -n "$A" link set vethA up && ip -n "$B" link set vethB up &&
		ip -n "$A" link set lo up && ip -n "$B" link set lo up &&
		vsctl create fcgi >/dev/null && vsctl create www1 --id 1 >/dev/null &&
		vsctl create www2 --id 2 >/dev/null &&
		RULE=$(vsctl addrule '(accept, fcgi, req=www2) -> (req)')
}
ktap_test_result "two_namespaces_over_veth_and_a_rule" setup

OUT=$(mktemp)
# The server: moved into fcgi, then exec'd into namespace A; reports its VS after each accept.
(
	vsctl addprocess fcgi "$BASHPID" >/dev/null || exit 1
	exec ip netns exec "$A" python3 -c '
import json, os, socket, subprocess, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.1", '"$PORT"'))
s.listen(8)
print("listening", flush=True)
for _ in range(4):
    c, peer = s.accept()
    who = json.loads(subprocess.check_output(["vsctl", "which", str(os.getpid()), "--json"]))
    mark = c.getsockopt(socket.SOL_SOCKET, socket.SO_MARK)
    print("accepted", who["name"], mark, flush=True)
    c.recv(16)
    c.close()
'
) >"$OUT" 2>&1 &
SERVER=$!
for _ in $(seq 100); do grep -q listening "$OUT" && break; sleep 0.1; done

client() { # VS [TOS]: connect from namespace B as a task of VS (root: unclassified)
	(
		[ "$1" = root ] || vsctl addprocess "$1" "$BASHPID" >/dev/null || exit 1
		exec ip netns exec "$B" timeout 20 python3 -c '
import socket, sys
c = socket.socket()
if int(sys.argv[1]):
    c.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, int(sys.argv[1]))
c.settimeout(10)
c.connect(("192.0.2.1", '"$PORT"'))
c.sendall(b"hello")
c.close()
' "${2:-0}"
	)
}

# accepted N: wait (at most 10 s) for the server's Nth accept; print its line.
accepted() {
	local _
	for _ in $(seq 100); do
		[ "$(grep -c "^accepted" "$OUT")" -ge "$1" ] && break
		sleep 0.1
	done
	grep "^accepted" "$OUT" | sed -n "$1p"
}

# server_said N RE: the server's Nth accept reported a line matching the extended regex RE.
server_said() {
	[[ "$(accepted "$1")" =~ ^$2$ ]] && return 0
	ktap_print_msg "accept $1: want '$2'; server output: $(tr '\n' '|' <"$OUT")"
	return 1
}

client_www1() {
	client www1 && server_said 1 "accepted fcgi [0-9]+"
}
ktap_test_result "client_in_www1_no_rule_server_stays_in_fcgi" client_www1

# An unclassified client whose packets claim global VS www2 in their DSCP: its socket is
# found, untagged, so the claim is ignored.
client_forged() {
	client root $((2 << 2)) && server_said 2 "accepted fcgi [0-9]+"
}
ktap_test_result "forged_dscp_from_other_namespace_ignored_server_stays_in_fcgi" client_forged

client_www2() {
	client www2 && server_said 3 "accepted www2 2"
}
ktap_test_result "client_in_global_www2_server_reclassified_through_the_client_socket" client_www2

# A local VSID never leaves the host in DSCP: only the client's socket can tell it.
client_local() {
	local site
	site=$(vsctl create site) || return 1
	[ "$site" -ge 64 ] || { ktap_print_msg "site has VSID $site, not a local one"; return 1; }
	RULE_ANY=$(vsctl addrule '(accept, fcgi, req=*) -> (req)') &&
		vsctl addprocess fcgi "$SERVER" >/dev/null || return 1
	client site && timeout 20 tail -f --pid "$SERVER" /dev/null
	server_said 4 "accepted site $site"
}
ktap_test_result "client_in_local_vsid_from_other_namespace_server_reclassified" client_local

kill "$SERVER" 2>/dev/null
wait 2>/dev/null
rm -f "$OUT"
ktap_finished
