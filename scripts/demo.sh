#!/usr/bin/env bash
# The demo scenario, run inside the guest with vs.ko loaded: the paper's web-hosting example
# as a VS tree, shown with vsctl.
set -euo pipefail
step() { printf '\n$ %s\n' "$*"; "$@"; }

echo "== vs demo: $(uname -r), module $(cat /sys/module/vs/initstate 2>/dev/null || echo ?)"
step vsctl version
step vsctl create web --cpu-share 75 --net-share 60
step vsctl create www1 --parent web --id 1 --cpu-share 50
step vsctl create www2 --parent web --id 2
step vsctl create fcgi --parent web --max-procs 32
step vsctl create batch --cpu-share 25 --max-procs 100
step vsctl set www2 --detach procs
step vsctl list
step vsctl show www2
echo
echo '$ vsctl create greedy --cpu-share 10    # root has 0% left: refused'
vsctl create greedy --cpu-share 10 || true
echo '$ vsctl destroy web                     # has children: refused'
vsctl destroy web || true
step vsctl show fcgi --json

echo
echo "== gates: a shared backend in fcgi serves each site as that site"
step vsctl addrule '(accept, fcgi, req=*) -> (req)'
step vsctl addrule '(fork, batch) -> (keep)'
step vsctl rules
# A backend on loopback, started in fcgi; one client from www1 (global VSID 1, carried in DSCP).
python3 -c '
import socket, subprocess, os
s = socket.socket(); s.bind(("127.0.0.1", 9000)); s.listen()
print("backend pid", os.getpid(), flush=True)
c, _ = s.accept()
subprocess.run(["vsctl", "which", str(os.getpid())])
' > /tmp/vs-demo-backend.txt &
BACKEND=$!
vsctl addprocess fcgi $BACKEND >/dev/null
sleep 1
echo "\$ vsctl which $BACKEND    # before the request"
vsctl which $BACKEND
(vsctl addprocess www1 $BASHPID >/dev/null; exec python3 -c 'import socket; socket.create_connection(("127.0.0.1", 9000)).close()')
wait $BACKEND
echo "# after accepting a request from www1, the backend reports:"
tail -n 1 /tmp/vs-demo-backend.txt

echo
echo "== process limit: batch limited to 3 tasks"
step vsctl set batch --max-procs 3
# A process in batch forks five children: itself and two fit, the rest get EAGAIN.
(
	vsctl addprocess batch $BASHPID >/dev/null
	exec python3 -c '
import os, time
kids = []
for i in range(5):
    try:
        pid = os.fork()
        if pid == 0:
            time.sleep(1)
            os._exit(0)
        kids.append(pid)
        print("fork", i + 1, "ok")
    except OSError as e:
        print("fork", i + 1, "refused:", e.strerror)
for k in kids:
    os.waitpid(k, 0)
'
)
step vsctl stats batch

echo
echo "== CPU: batch (25 %) with 4 busy loops against web (75 %) with 1, all on CPU 0"
step vsctl set batch --max-procs unlimited
for v in batch batch batch batch web; do
	(vsctl addprocess $v $BASHPID >/dev/null; exec taskset -c 0 sh -c 'while :; do :; done') &
	LOOPS="${LOOPS:-} $!"
done
sleep 2
step vsctl top --count 1 --interval 2
kill $LOOPS
wait 2>/dev/null
