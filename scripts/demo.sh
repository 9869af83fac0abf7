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
