#!/usr/bin/env bash
# dockerd with berth-runtime as an added runtime (`dockerd --add-runtime berth=…`): the
# ordinary docker flow, checked. Starts its own dockerd (and the containerd it manages) with
# all state in a temp dir, no bridge and no iptables rules; removes everything on exit.
# Usage (root): tests/compat/docker-runtime.sh    (BERTH_RUNTIME=… to test another binary,
# COMPAT_RUNTIME=runc to run the same checks against runc for comparison)
set -uo pipefail
source "$(dirname "$0")/lib.sh"
require dockerd containerd script
DOCKER=$(command -v docker) || { echo "docker client not found" >&2; exit 2; }
RT=${COMPAT_RUNTIME:-berth}

T=$(mktemp -d /tmp/berth-compat-docker.XXXXXX)
remember_paths /etc/docker/key.json /run/docker /run/containerd
remember_cgroup_parents docker
links_before=$(ip -o link | awk -F': ' '{print $2}' | sort)
# dockerd turns net.ipv4.ip_forward on at start (with --ip-forward=false it warns on every run,
# which these checks would see): the value is put back when the script ends.
ip_forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
cleanup() {
  local rc=$?
  if [[ -S $T/docker.sock ]]; then
    # Containers first (so the shims go), then the daemon, which stops its containerd.
    ids=$(dk ps -aq 2>/dev/null); [[ -z $ids ]] || dk rm -f $ids >/dev/null 2>&1
  fi
  stop_pid "$(cat "$T/dockerd.pid" 2>/dev/null)" 15
  stop_pid "$(cat "$T/exec/containerd/containerd.pid" 2>/dev/null)" 5
  host_cleanup "$T"
  echo "$ip_forward_before" >/proc/sys/net/ipv4/ip_forward
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
dk() { DOCKER_HOST=unix://$T/docker.sock "$DOCKER" "$@"; }

echo '{}' >"$T/daemon.json"
dockerd --config-file "$T/daemon.json" --data-root "$T/docker" --exec-root "$T/exec" --pidfile "$T/dockerd.pid" \
  -H "unix://$T/docker.sock" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
  --add-runtime "berth=$BERTH_RUNTIME" >"$T/dockerd.log" 2>&1 &
for ((i = 0; i < 100; i++)); do dk version >/dev/null 2>&1 && break; sleep 0.2; done
dk version >/dev/null 2>&1 || { fail "dockerd starts" "$(tail -20 "$T/dockerd.log")"; summary; exit 1; }
make_rootfs "$T/bundle"
tar -C "$T/bundle/rootfs" -c . | dk import -c 'ENV PATH=/bin' - busybox:local >/dev/null
run() { dk run --runtime "$RT" "$@"; }

echo "== docker $(dk version -f '{{.Server.Version}}') with runtime $RT ($([[ $RT == berth ]] && echo "$BERTH_RUNTIME" || echo "$RT"))"

out=$(run --rm busybox:local echo hi 2>&1); rc=$?
expect "run --rm echo hi" "hi rc=0" "$out rc=$rc"

out=$(run --rm busybox:local sh -c 'exit 42' 2>&1); rc=$?
expect "run: the container's exit code (42)" 42 "$rc" "$out"

out=$(run --rm busybox:local sh -c 'echo "$$ $(hostname)"; ps -o comm= >/tmp/ps; sort /tmp/ps | tr "\n" " "' 2>&1)
expect_match "run: PID 1, own hostname, ps sees only its own processes" '^1 [0-9a-f]{12}'$'\n''ps sh $' "$out"

out=$(run --rm busybox:local /nosuch 2>&1); rc=$?
expect "run a missing command: exit 127 as with runc" 127 "$rc" "$out"

out=$(run --rm busybox:local /etc/passwd 2>&1); rc=$?
expect "run a non-executable file: exit 126 as with runc" 126 "$rc" "$out"

# Detached: ps, logs, stop (SIGTERM reaches the trap), rm.
id=$(run -d busybox:local sh -c 'echo started; trap "echo got-term; exit 3" TERM; while :; do sleep 0.1; done' 2>&1)
if [[ $id =~ ^[0-9a-f]{64}$ ]]; then
  pass "run -d"
  sleep 0.5
  expect "ps shows the running container" "Up" "$(dk ps --filter "id=$id" --format '{{.Status}}' | cut -c1-2)"
  expect "logs" started "$(dk logs "$id" 2>&1)"
  out=$(dk stop -t 10 "$id" 2>&1); rc=$?
  expect "stop (SIGTERM)" "0" "$rc" "$out"
  expect "logs after stop: the trap ran" $'started\ngot-term' "$(dk logs "$id" 2>&1)"
  expect "exit code after stop" 3 "$(dk inspect -f '{{.State.ExitCode}}' "$id")"
  out=$(dk start "$id" 2>&1); rc=$?
  expect "start a stopped container again" 0 "$rc" "$out"
  out=$(dk kill "$id" 2>&1); sleep 0.3
  expect "kill: exit code 137" 137 "$(dk inspect -f '{{.State.ExitCode}}' "$id")" "$out"
  out=$(dk rm "$id" 2>&1); rc=$?
  expect "rm" 0 "$rc" "$out"
else
  fail "run -d" "$id"
fi

# A process that ignores SIGTERM: stop falls back to SIGKILL.
id=$(run -d busybox:local sleep 1000 2>&1)
out=$(dk stop -t 1 "$id" 2>&1)
expect "stop -t 1 of a process ignoring SIGTERM: exit 137" 137 "$(dk inspect -f '{{.State.ExitCode}}' "$id" 2>&1)" "$out"
dk rm -f "$id" >/dev/null 2>&1

# -it needs --console-socket; `script` gives docker the pty it wants.
out=$(script -qec "DOCKER_HOST=unix://$T/docker.sock $DOCKER run --rm -it --runtime $RT busybox:local sh -c 'tty; exit 5'" /dev/null 2>&1); rc=$?
expect_match "run -it: a pty inside" '/dev/pts/[0-9]+' "$out"
expect "run -it: the exit code" 5 "$rc" "$out"

out=$(printf 'hello\n' | run --rm -i busybox:local sh -c 'read line; echo "got $line"' 2>&1)
expect "run -i: stdin reaches the container" "got hello" "$out"

# --memory: the limit is seen inside and on the host, and the group goes with the container.
id=$(run -d --memory 64m busybox:local sleep 1000 2>&1)
host=$(cat "/sys/fs/cgroup/memory/docker/$id/memory.limit_in_bytes" 2>&1)
expect "--memory 64m: limit on the host (memory/docker/<id>)" 67108864 "$host"
dk rm -f "$id" >/dev/null 2>&1
expect "rm -f removes the container's cgroup" "gone" "$([[ -e /sys/fs/cgroup/memory/docker/$id ]] && echo present || echo gone)"
out=$(run --rm --memory 64m busybox:local cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)
expect "--memory 64m: /sys/fs/cgroup/memory inside the container" 67108864 "$out"
out=$(run --rm --cpus 0.5 --pids-limit 50 busybox:local cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max 2>&1)
expect "--cpus 0.5 --pids-limit 50" $'50000\n50' "$out"

out=$(run --rm --network none busybox:local sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "' 2>&1)
expect "--network none: only lo" lo "$out"

# Docker's default seccomp profile is in config.json; runc enforces it (Seccomp: 2).
out=$(run --rm busybox:local grep '^Seccomp:' /proc/self/status 2>&1)
expect "docker's default seccomp profile is enforced" $'Seccomp:\t2' "$out"

# Commands berth-runtime does not have yet (runc ps / exec / pause): skipped when it says so.
id=$(run -d busybox:local sleep 1000 2>&1)
if [[ ! $id =~ ^[0-9a-f]{64}$ ]]; then fail "run -d (for top, exec, pause)" "$id"; else
out=$(dk top "$id" 2>&1); rc=$?
if unsupported "$out"; then skip "top (runc ps)" "ps"; else expect_match "top (runc ps)" 'sleep 1000' "$out"; fi
out=$(dk exec "$id" echo exec-ok 2>&1)
if unsupported "$out"; then skip "exec" "exec"; else expect "exec" exec-ok "$out"; fi
out=$(dk pause "$id" 2>&1); rc=$?
if unsupported "$out"; then skip "pause/unpause" "pause"; else
  expect "pause" paused "$(dk inspect -f '{{.State.Status}}' "$id")" "$out"; dk unpause "$id" >/dev/null 2>&1
fi
dk rm -f "$id" >/dev/null 2>&1
fi

# -v SRC:DST:rshared: dockerd asks for rootfsPropagation shared; a mount made inside the volume
# shows on the host (SRC must sit on a shared mount: a bind of its own here, removed right after).
mkdir -p "$T/shared"
if mount --bind "$T/shared" "$T/shared" && mount --make-shared "$T/shared"; then
  out=$(run --rm --cap-add SYS_ADMIN -v "$T/shared:/vol:rshared" busybox:local sh -c \
    'mkdir -p /vol/sub && mount -t tmpfs tmpfs /vol/sub && echo from-container >/vol/sub/f && echo mounted' 2>&1)
  expect "-v :rshared: a mount inside reaches the host" $'mounted\nfrom-container' "$out
$(cat "$T/shared/sub/f" 2>&1)"
  umount -R "$T/shared"
else
  fail "-v :rshared (making $T/shared a shared mount)" ""
fi

# Nothing left: runtime state, cgroups, mounts, links.
expect "no runtime state left (exec-root/runtime-$RT/moby)" "" "$(ls -A "$T/exec/runtime-$RT/moby" 2>/dev/null)"
expect "no container cgroups left" "" "$(find /sys/fs/cgroup/*/docker -mindepth 1 -type d 2>/dev/null)"
expect "no rootfs mounts left" "" "$(grep -c "$T/docker/overlay2/.*/merged" /proc/self/mountinfo | grep -v '^0$')"
expect "no new network links" "$links_before" "$(ip -o link | awk -F': ' '{print $2}' | sort)"

summary
((failed == 0))
