#!/usr/bin/env bash
# API shape parity: the same scenarios against berthd (artifacts/bin) and dockerd 20.10, side by side,
# and the key paths and value types of their JSON answers compared (json-shape-diff.py).
#
#   sudo scripts/api-parity/api-parity.sh [--keep] [--values]
#
#   --keep     keep the temp dir (the answers under out/b and out/d, the daemons' logs)
#   --values   also print the values that differ where both have a path of the same type
#
# Both daemons run in one network namespace made for the run (ip netns add apiparity<pid>), on data
# and exec roots in a temp dir (/tmp/berth-api-parity.XXXXXX): berthd with --bridge-netns, dockerd
# (which starts its containerd) inside it and in a private mount namespace with a tmpfs on /run,
# with --cgroup-parent /apiparity<pid>-docker. Nothing touches the host's network or firewall.
# Scenarios (docker 20.10 CLI, /usr/bin/docker): containers created, running, exited non-zero,
# restarted by their policy, paused, OOM-killed, with ports, a health check, bind/volume/tmpfs mounts,
# on a user network with aliases, --network none, labels, the local log driver, --init, resources;
# then exec inspect, the lists, image and network and volume inspect, info, version, df, events and
# stats. Each answer is read at API 1.41 (dockerd 20.10's) and, from berthd only, 1.47.
# Cleanup (trap): containers removed, daemons stopped by PID, mounts under the temp dir unmounted,
# the netns and dockerd's cgroups removed, the temp dir removed unless --keep.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
keep=0 values=
while (($#)); do
  case $1 in
    --keep) keep=1 ;;
    --values) values=--values ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "api-parity.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for tool in dockerd /usr/bin/docker curl jq ip nsenter unshare python3 busybox; do
  command -v "$tool" >/dev/null || { echo "api-parity.sh: $tool not found" >&2; exit 1; }
done
[[ -x $repo/artifacts/bin/berthd ]] || { echo "api-parity.sh: run ./build.sh first" >&2; exit 1; }

T=$(mktemp -d /tmp/berth-api-parity.XXXXXX)
ns=apiparity$$ cgparent=apiparity$$-docker
berth_pid= docker_pid=
cleanup() {
  set +e
  for e in b d; do
    [[ -S $T/$e.sock ]] || continue
    for c in $(/usr/bin/docker -H "unix://$T/$e.sock" ps -aq 2>/dev/null); do /usr/bin/docker -H "unix://$T/$e.sock" rm -f "$c" >/dev/null 2>&1; done
  done
  for pid in $berth_pid $docker_pid; do kill "$pid" 2>/dev/null; done
  for pid in $berth_pid $docker_pid; do for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done; done
  for m in $(awk -v t="$T" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount "$m" 2>/dev/null || umount -l "$m"; done
  ip netns del "$ns" 2>/dev/null
  for g in /sys/fs/cgroup/*/"$cgparent"; do [[ -d $g ]] && rmdir "$g" 2>/dev/null; done
  if ((keep)); then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "$T/b" "$T/d" "$T/run" "$T/bin" "$T/bind" "$T/rootfs/bin" "$T/rootfs/etc"
mount -t tmpfs -o mode=0755 tmpfs "$T/run"
cp "$repo"/artifacts/bin/* "$T/bin/"
"$T/bin/berthd" --data-root "$T/b/data" --exec-root "$T/run/b-exec" -H "unix://$T/b.sock" --pidfile "$T/b/pid" \
  --bridge-netns "/run/netns/$ns" >"$T/berthd.log" 2>&1 &
berth_pid=$!
# containerd-shim puts its sockets in /run/containerd/s whatever the exec root, iptables its lock in /run.
printf '%s\n' 'mount -t tmpfs -o mode=0755 tmpfs /run' \
  "exec dockerd --data-root $T/d/data --exec-root $T/run/d-exec -H unix://$T/d.sock --pidfile $T/d/pid --cgroup-parent /$cgparent" >"$T/d/start.sh"
nsenter "--net=/run/netns/$ns" unshare --mount --propagation private sh "$T/d/start.sh" >"$T/dockerd.log" 2>&1 &
docker_pid=$! # nsenter, unshare and sh exec: dockerd's PID
for _ in $(seq 300); do
  curl -sf --unix-socket "$T/b.sock" http://x/_ping >/dev/null 2>&1 && curl -sf --unix-socket "$T/d.sock" http://x/_ping >/dev/null 2>&1 && break
  kill -0 "$berth_pid" && kill -0 "$docker_pid" || { tail -20 "$T/berthd.log" "$T/dockerd.log" >&2; exit 1; }
  sleep 0.1
done

busybox=$(command -v busybox)
cp "$busybox" "$T/rootfs/bin/busybox"
for a in $("$busybox" --list); do [[ $a == busybox ]] || ln -sf busybox "$T/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$T/rootfs/etc/passwd"
echo 'root:x:0:' >"$T/rootfs/etc/group"
tar -C "$T/rootfs" --numeric-owner --owner=0 --group=0 -cf "$T/busybox.tar" .
for e in b d; do /usr/bin/docker -H "unix://$T/$e.sock" import -c 'CMD ["sh"]' "$T/busybox.tar" busybox:latest >/dev/null; done

scenarios() { # scenarios ENGINE HOSTPORT: runs the scenarios against b or d, answers in out/ENGINE
  local e=$1 port=$2 S=$T/$1.sock O=$T/out/$1 x x2 now
  mkdir -p "$O"
  D() { /usr/bin/docker -H "unix://$S" "$@"; }
  api() { curl -s --unix-socket "$S" "$@"; }
  D network create --label nl=1 net1 >/dev/null
  D volume create --label vl=1 vol1 >/dev/null
  D create --name c-created busybox >/dev/null
  D run -d --name c-running busybox sleep 1000 >/dev/null
  D run --name c-exited busybox sh -c 'exit 3' || true
  D run -d --name c-restart --restart on-failure:2 busybox sh -c 'sleep 0.2; exit 1' >/dev/null
  D run -d --name c-paused busybox sleep 1000 >/dev/null
  D pause c-paused >/dev/null
  D run --name c-oom -m 8m --memory-swap 8m busybox sh -c 'a=aaaaaaaaaaaaaaaa; while true; do a=$a$a; done' 2>/dev/null || true
  D run -d --name c-ports -p "$port:80" -p 127.0.0.1::81/udp --expose 90 busybox sleep 1000 >/dev/null
  D run -d --name c-health --health-cmd true --health-interval 1s busybox sleep 1000 >/dev/null
  D run -d --name c-mounts -v "$T/bind:/b:ro" -v vol1:/v -v /anon --tmpfs /t:size=1m --mount type=volume,dst=/v2 busybox sleep 1000 >/dev/null
  D run -d --name c-net --network net1 --network-alias al1 --network-alias al2 busybox sleep 1000 >/dev/null
  D run -d --name c-none --network none busybox sleep 1000 >/dev/null
  D create --name c-labels -l a=b -l c= busybox >/dev/null
  D run -d --name c-log --log-driver local --log-opt max-size=1m busybox sleep 1000 >/dev/null
  D run -d --name c-init --init busybox sleep 1000 >/dev/null
  D run -d --name c-res --cpus 0.5 -m 64m --pids-limit 50 --cpu-shares 512 --cpuset-cpus 0 --blkio-weight 300 \
    --ulimit nofile=100:200 --memory-reservation 32m --oom-score-adj 100 --shm-size 32m busybox sleep 1000 >/dev/null 2>&1
  sleep 4 # the restart policy's restarts, a health probe or two
  x=$(api -XPOST -H 'Content-Type: application/json' -d '{"Cmd":["sleep","0"],"AttachStdout":true}' http://x/v1.41/containers/c-running/exec | jq -r .Id)
  api "http://x/v1.41/exec/$x/json" >"$O/exec-created.json"
  D exec c-running true
  x2=$(api -XPOST -H 'Content-Type: application/json' -d '{"Cmd":["true"]}' http://x/v1.41/containers/c-running/exec | jq -r .Id)
  api -XPOST -H 'Content-Type: application/json' -d '{"Detach":true}' "http://x/v1.41/exec/$x2/start"
  sleep 1
  api "http://x/v1.41/exec/$x2/json" >"$O/exec-done.json"
  for c in created running exited restart paused oom ports health mounts net none labels log init res; do
    api "http://x/v1.41/containers/c-$c/json" >"$O/c-$c.json"
    [[ $e == b ]] && api "http://x/v1.47/containers/c-$c/json" >"$O/c-$c.1.47.json"
  done
  get() { api "http://x/v1.41/$1" >"$O/$2.json"; [[ $e == d ]] || api "http://x/v1.47/$1" >"$O/$2.1.47.json"; }
  get 'containers/json?all=1&size=1' ps
  get 'containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%22%5D%7D' ps-filter
  get images/json images
  get images/busybox/json image
  get images/busybox/history history
  get networks networks
  get networks/net1 net1
  get 'networks/net1?verbose=true' net1-verbose
  get networks/bridge netbridge
  get volumes volumes
  get volumes/vol1 vol1
  get info info
  get version version
  get system/df df
  get 'containers/c-running/stats?stream=0' stats
  get 'containers/c-exited/stats?stream=0' stats-exited
  now=$(date +%s)
  api "http://x/v1.41/events?since=0&until=$now" >"$O/events.jsonl"
}
# One after the other: the host ports differ, both daemons share the netns.
scenarios b 18080 >"$T/scenarios-b.log" 2>&1
scenarios d 18081 >"$T/scenarios-d.log" 2>&1

for f in "$T"/out/d/*.json*; do
  name=$(basename "$f")
  echo "== $name (dockerd 20.10 | berthd, API 1.41)"
  python3 "$(dirname "$0")/json-shape-diff.py" "$f" "$T/out/b/$name" $values
done
