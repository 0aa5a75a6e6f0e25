#!/usr/bin/env bash
# Sets Berth up on a fresh Debian machine and shows its main job: berthd running containers for
# the berth CLI (and for the docker CLI, when installed) - one in the foreground showing its
# isolation, one detached with its logs, an exec into it, stop and rm.
# Needs root (containers) and the .NET 10 SDK. Usage: sudo ./quickstart.sh
# Everything lives in a temp dir (data root, exec root, socket) and goes when the script ends;
# the bridge network and its NAT rules live in a network namespace the script makes and deletes.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v busybox >/dev/null || ! command -v gcc >/dev/null || ! command -v nft >/dev/null || ! command -v tini >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static gcc zlib1g-dev libssl-dev python3 iproute2 nftables tini >/dev/null
fi
./build.sh

work=$(mktemp -d /tmp/berth-quickstart-XXXXXX)
netns="berth-quickstart-$$"
berthd_pid=""
cleanup() {
  set +e
  if [[ -n "$berthd_pid" ]]; then
    artifacts/bin/berth rm -f $(artifacts/bin/berth ps -aq) >/dev/null 2>&1
    kill "$berthd_pid" 2>/dev/null && wait "$berthd_pid" 2>/dev/null
  fi
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  ip netns del "$netns" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$netns"

export BERTH_HOST="unix://$work/berth.sock"
artifacts/bin/berthd --data-root "$work/data" --exec-root "$work/exec" -H "$BERTH_HOST" \
  --bridge-netns "/run/netns/$netns" --log-level warn &
berthd_pid=$!
for _ in $(seq 100); do artifacts/bin/berth version >/dev/null 2>&1 && break; sleep 0.1; done
echo "host:    berthd runs (pid $berthd_pid), API on $BERTH_HOST"

# A busybox image from Debian's busybox-static.
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/"
for applet in sh echo ps ls hostname cat sleep ip grep id; do ln -s busybox "$work/rootfs/bin/$applet"; done
tar -C "$work/rootfs" -c . | artifacts/bin/berth import -c 'CMD ["sh"]' - busybox:latest >/dev/null
echo "host:    imported busybox:latest"

echo "host:    berth run --rm busybox ...  (the host's hostname is $(hostname))"
artifacts/bin/berth run --rm busybox sh -c '
  echo "inside:  my pid is $$, my hostname is $(hostname)"
  echo "inside:  the processes I can see:"; ps
  echo "inside:  my network: $(ip -4 -o addr show eth0 | grep -o "inet [0-9./]*")"'

artifacts/bin/berth run -d --name ticker busybox sh -c 'while true; do echo "tick $(date +%T)"; sleep 1; done' >/dev/null
sleep 2.2
echo "host:    berth logs ticker"
artifacts/bin/berth logs ticker
echo "host:    berth exec ticker ps"
artifacts/bin/berth exec ticker ps
artifacts/bin/berth ps
artifacts/bin/berth stop -t 1 ticker >/dev/null
artifacts/bin/berth rm ticker >/dev/null
echo "host:    stopped and removed"

# A Dockerfile build: shell-form CMD makes /bin/sh PID 1, exec form makes the program PID 1.
mkdir -p "$work/app"
echo "built by berth" > "$work/app/message.txt"
printf 'FROM busybox\nCOPY message.txt /\nCMD cat /proc/1/cmdline; echo\n' > "$work/app/Dockerfile"
printf 'FROM busybox\nCOPY message.txt /\nCMD ["cat", "/proc/1/cmdline"]\n' > "$work/app/Dockerfile.exec"
echo "host:    berth build -t app:shell (CMD in shell form), then -t app:exec (exec form)"
artifacts/bin/berth build -t app:shell "$work/app" | sed 's/^/build:   /'
artifacts/bin/berth build -q -t app:exec -f "$work/app/Dockerfile.exec" "$work/app" >/dev/null
echo "host:    PID 1 of app:shell is: $(artifacts/bin/berth run --rm app:shell | tr '\0' ' ')"
echo "host:    PID 1 of app:exec  is: $(artifacts/bin/berth run --rm app:exec | tr '\0' ' ')"
echo "host:    try it yourself with: berth run -it busybox sh"
