#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The requester's VS across hosts: two network namespaces joined by a veth pair (addresses
# from TEST-NET-1, inside namespaces this test creates). A client in global VS www2 connects
# from one; the server in local VS fcgi accepts in the other and must be reclassified to www2,
# which only the DSCP bits of the client's packets can have told it.
. "$VS_KTAP_HELPERS"

ktap_print_header
ktap_set_plan 3

A=vsA$$ B=vsB$$ PORT=8080
cleanup() {
	ip netns del "$A" 2>/dev/null
	ip netns del "$B" 2>/dev/null
	vsctl delrule "$RULE" >/dev/null 2>&1
	for v in fcgi www1 www2; do vsctl destroy "$v" >/dev/null 2>&1; done
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
for _ in range(2):
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

client() { # VS
	(
		vsctl addprocess "$1" "$BASHPID" >/dev/null || exit 1
		exec ip netns exec "$B" timeout 20 python3 -c '
import socket
c = socket.create_connection(("192.0.2.1", '"$PORT"'), timeout=10)
c.sendall(b"hello")
c.close()
'
	)
}

client_www1() {
	client www1 && for _ in $(seq 100); do grep -q "^accepted" "$OUT" && break; sleep 0.1; done
	grep -q "^accepted fcgi " "$OUT" || { ktap_print_msg "server output: $(tr '\n' '|' <"$OUT")"; return 1; }
}
ktap_test_result "client_in_www1_no_rule_server_stays_in_fcgi" client_www1

client_www2() {
	client www2 && timeout 20 tail -f --pid "$SERVER" /dev/null
	grep -q "^accepted www2 2$" "$OUT" || { ktap_print_msg "server output: $(tr '\n' '|' <"$OUT")"; return 1; }
}
ktap_test_result "client_in_global_www2_server_reclassified_from_the_wire" client_www2

kill "$SERVER" 2>/dev/null
wait 2>/dev/null
rm -f "$OUT"
ktap_finished
