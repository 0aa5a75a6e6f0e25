#!/usr/bin/env bash
# Engine benchmark: `berth run` against `docker run` and `podman run`, paired in one run.
#
#   bench/engine-run.sh [--build] [--runs N] [--rounds R] [--warmup W] [--par-runs K]
#                       [--exec-runs M] [--json FILE] [--markdown FILE]
#
# Each engine gets its own state in one temp dir and its own private network namespace
# (ip netns add bench<pid>), so bridges, veths, NAT/iptables rules live and die there:
#  - berthd (artifacts/bin, copied into the temp dir) with --bridge-netns /run/netns/bench<pid>;
#  - dockerd (it starts containerd itself) with --data-root/--exec-root/-H/--pidfile in the
#    temp dir and --cgroup-parent /<tag>-docker, run as
#    `unshare --mount --propagation private nsenter --net=/run/netns/bench<pid> dockerd ...`:
#    `ip netns exec` cannot be used because it remounts /sys, which hides /sys/fs/cgroup
#    (cgroup v1 here) from dockerd; the private mount namespace keeps docker's overlay mounts
#    off the host;
#  - podman (daemonless) with --root/--runroot, a private containers.conf (CONTAINERS_CONF:
#    cgroupfs, runc, netavark with its config dir, tmp/volume/events paths, all in the temp dir)
#    and --cgroup-parent /<tag>-podman; every podman command runs as
#    `nsenter --net=/run/netns/bench<pid> podman ...` (host mount namespace: podman's mounts
#    must outlive one command; they are unmounted at the end). crun refuses this host's hybrid
#    cgroup layout, so podman uses runc; root lacks CAP_SYS_RESOURCE here, so podman's default
#    ulimits (nofile 1048576, nproc 4194304, above the hard limits) are replaced with
#    `--ulimit host`.
# The image is busybox:latest, `import`ed into each engine from one tar made of Debian's
# /bin/busybox (busybox-static) plus applet links.
#
# Measured (hyperfine -N, R rounds whose engine order rotates, W warm-ups each):
#  1. `ENGINE run --rm busybox /bin/true`, default bridge network and --network none;
#  2. 10 such runs started in parallel (--network none), wall time of the batch;
#  3. `ENGINE exec C true` into a running container (busybox sleep, --network none).
# Wall time and CPU time: the client's user+sys (hyperfine; includes the processes it
# waits for, e.g. podman's runc calls) plus the engine side, read from a cpuacct cgroup
# the script puts the daemon in before it starts (everything it forks stays there:
# berthd + berth-monitor + berth-runtime; dockerd + containerd + containerd-shim + runc;
# for podman: the conmon cgroup /<tag>-podman/conmon, where podman moves conmon and its
# cleanup process). Engine-side CPU = cgroup delta over a hyperfine call / (runs + warm-ups).
# The container's own processes are in their own cgroups and not counted.
# Per-container overhead: VmRSS and PSS of berth-monitor vs containerd-shim vs conmon while
# one container runs detached.
#
# Cleanup (trap): containers removed, daemons stopped by PID, leftover processes of the
# script's cgroups killed, mounts under the temp dir unmounted, the netns and the script's
# cgroups deleted, the temp dir removed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

runs=30 rounds=3 warmup=2 par_runs=6 exec_runs=30 build=0 json_out= md_out=
while (($#)); do
  case $1 in
    --build) build=1 ;;
    --runs) runs=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --par-runs) par_runs=$2; shift ;;
    --exec-runs) exec_runs=$2; shift ;;
    --json) json_out=$2; shift ;;
    --markdown) md_out=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "engine-run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
((runs % rounds == 0 && exec_runs % rounds == 0 && par_runs % rounds == 0)) || { echo "engine-run.sh: --runs, --exec-runs, --par-runs must be multiples of --rounds" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "engine-run.sh: must run as root" >&2; exit 1; }
for tool in docker dockerd containerd podman conmon runc hyperfine nsenter unshare ip python3 findmnt; do
  command -v "$tool" >/dev/null || { echo "engine-run.sh: $tool not found" >&2; exit 1; }
done
[[ -x /bin/busybox ]] || { echo "engine-run.sh: /bin/busybox missing (apt-get install -y busybox-static)" >&2; exit 1; }

if ((build)) || [[ ! -x $repo/artifacts/bin/berthd ]]; then (cd "$repo" && ./build.sh); fi

tmp=$(mktemp -d /tmp/engine-bench.XXXXXX)
tag=enginebench-$$
netns=bench$$
cg=/sys/fs/cgroup/cpuacct/$tag
berth_pid= docker_pid= podman_ns_pid=
# A private copy: a rebuild of artifacts/bin during the run must not swap the binaries under test.
mkdir -p "$tmp/bin"
for b in berth berthd berth-monitor berth-runtime; do install -m 0755 "$repo/artifacts/bin/$b" "$tmp/bin/$b"; done
berth_origin="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$repo" && [[ -n $(git status --porcelain -- src native 2>/dev/null) ]] && echo ' + uncommitted src changes'), berthd sha256 $(sha256sum "$tmp/bin/berthd" | cut -c1-12)"

B=("$tmp/bin/berth" -H "unix://$tmp/berth.sock")
D=(docker -H "unix://$tmp/docker.sock")
P=(nsenter "--mount=$tmp/podman/ns/mnt" "--net=/run/netns/$netns" podman --root "$tmp/podman/root" --runroot "$tmp/run/podman-runroot" --storage-driver overlay)
export CONTAINERS_CONF=$tmp/podman/containers.conf DOCKER_CONFIG=$tmp/docker-cli HOME=$tmp/podman/home XDG_CONFIG_HOME=$tmp/podman/home/.config
podman_run_opts=(--ulimit host --cgroup-parent "/$tag-podman")

stop_pid() { # stop_pid PID: TERM, wait up to 15 s, then KILL
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
our_cgroups() { find /sys/fs/cgroup -depth -type d -path "*$tag*" 2>/dev/null || true; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  echo "== cleanup" >&2
  if [[ -n $berth_pid ]]; then
    ids=$("${B[@]}" ps -aq 2>/dev/null); [[ -n $ids ]] && "${B[@]}" rm -f $ids >/dev/null 2>&1
  fi
  if [[ -n $docker_pid ]]; then
    ids=$("${D[@]}" ps -aq 2>/dev/null); [[ -n $ids ]] && "${D[@]}" rm -f $ids >/dev/null 2>&1
  fi
  if [[ -n $podman_ns_pid ]]; then "${P[@]}" rm -a -f -t 0 >/dev/null 2>&1; fi
  stop_pid "$berth_pid"
  stop_pid "$docker_pid"
  # Whatever the daemons left (monitors and shims outlive their daemon by design): every
  # process still in this run's cgroups was started by this script.
  for d in $(our_cgroups); do
    for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  sleep 0.5
  stop_pid "$podman_ns_pid"
  findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | while read -r m; do umount -l "$m"; done
  ip netns del "$netns" 2>/dev/null
  for d in $(our_cgroups); do rmdir "$d" 2>/dev/null; done
  rm -rf "$tmp"
  local left; left=$(our_cgroups; findmnt -rn -o TARGET | grep "^$tmp" ; ip netns list | grep -w "$netns")
  if [[ -n $left ]]; then echo "engine-run.sh: left behind:"$'\n'"$left" >&2; rc=1; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$netns"
ip -n "$netns" link set lo up
# Runtime state on a tmpfs, as /run is on every distribution: the exec roots of berthd and
# dockerd and podman's runroot (containerd's /run is a tmpfs of dockerd's mount namespace).
mkdir -p "$tmp/run"
mount -t tmpfs -o mode=0755 tmpfs "$tmp/run"
for e in berth docker podman; do mkdir -p "$cg/$e"; done

# --- the image: Debian's busybox-static and applet links
mkdir -p "$tmp/rootfs/bin"
cp /bin/busybox "$tmp/rootfs/bin/busybox"
for a in sh echo true false ls cat sleep ps id hostname env head wc printf kill touch mkdir pwd ip grep awk tail test; do
  ln -s busybox "$tmp/rootfs/bin/$a"
done
tar -C "$tmp/rootfs" --numeric-owner --owner=0 --group=0 -cf "$tmp/busybox.tar" .

# --- daemons, each started inside its cpuacct cgroup
in_cg() { local g=$1; shift; echo "echo \$\$ > $cg/$g/cgroup.procs && exec $*"; }
mkdir -p "$tmp/berth" "$tmp/docker" "$tmp/docker-cli" "$tmp/podman/net" "$tmp/podman/tmp"
echo "{}" >"$tmp/docker-cli/config.json"
sh -c "$(in_cg berth "$tmp/bin/berthd" --data-root "$tmp/berth/data" --exec-root "$tmp/run/berth-exec" \
  -H "unix://$tmp/berth.sock" --pidfile "$tmp/berth/berthd.pid" --bridge-netns "/run/netns/$netns")" \
  >"$tmp/berthd.log" 2>&1 &
berth_pid=$!
# dockerd: the bench netns, and a private mount namespace with a fresh /run (containerd-shim
# puts its sockets in /run/containerd/s whatever the exec-root; iptables its lock in /run).
printf '%s\n' 'mount -t tmpfs -o mode=0755 tmpfs /run' \
  "exec dockerd --data-root $tmp/docker/data --exec-root $tmp/run/docker-exec -H unix://$tmp/docker.sock --pidfile $tmp/docker/dockerd.pid --cgroup-parent /$tag-docker" \
  >"$tmp/docker/start.sh"
sh -c "$(in_cg docker nsenter "--net=/run/netns/$netns" unshare --mount --propagation private sh "$tmp/docker/start.sh")" \
  >"$tmp/dockerd.log" 2>&1 &
docker_pid=$! # nsenter, unshare and sh exec: this is dockerd's PID
# podman is daemonless: one long-lived mount namespace (held by a `sleep`, bound at
# $tmp/podman/ns/mnt) with fresh tmpfs on /run, /var/lib and /var/cache, where podman and runc
# keep state outside --root/--runroot (/run/runc, /run/containers/networks, /run/netns,
# /var/lib/containers/cache, /var/cache/containers); HOME is in the temp dir. Every podman
# command enters it and the bench netns with nsenter.
mkdir -p "$tmp/podman/ns" "$tmp/podman/home"
mount --bind "$tmp/podman/ns" "$tmp/podman/ns"
mount --make-private "$tmp/podman/ns"
touch "$tmp/podman/ns/mnt"
unshare "--mount=$tmp/podman/ns/mnt" --propagation private sh -c 'mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/lock && mount -t tmpfs -o mode=0755 tmpfs /var/lib && mount -t tmpfs -o mode=0755 tmpfs /var/cache && exec sleep 1000000' &
podman_ns_pid=$!
for ((i = 0; i < 50; i++)); do [[ $(findmnt -rn -o FSTYPE "$tmp/podman/ns/mnt" 2>/dev/null) == nsfs ]] && break; sleep 0.1; done
sleep 0.3
cat >"$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$tmp/podman/events.log"
runtime = "runc"
tmp_dir = "$tmp/podman/tmp"
volume_path = "$tmp/podman/volumes"
[network]
network_backend = "netavark"
network_config_dir = "$tmp/podman/net"
EOF
for ((i = 0; i < 300; i++)); do
  "${B[@]}" version >/dev/null 2>&1 && "${D[@]}" version >/dev/null 2>&1 && break
  kill -0 "$berth_pid" && kill -0 "$docker_pid" || { tail -20 "$tmp/berthd.log" "$tmp/dockerd.log" >&2; exit 1; }
  sleep 0.1
done
"${B[@]}" version >/dev/null && "${D[@]}" version >/dev/null || { tail -20 "$tmp/berthd.log" "$tmp/dockerd.log" >&2; exit 1; }

echo "== import busybox:latest" >&2
"${B[@]}" import "$tmp/busybox.tar" busybox:latest >/dev/null
"${D[@]}" import "$tmp/busybox.tar" busybox:latest >/dev/null
"${P[@]}" import "$tmp/busybox.tar" busybox:latest >/dev/null

run_cmd() { # run_cmd ENGINE NET -> the `run --rm busybox /bin/true` argv, one string
  local e=$1 net=$2 extra=()
  [[ $net == none ]] && extra=(--network none)
  case $e in
    berth) echo "${B[*]} run --rm ${extra[*]} busybox /bin/true" ;;
    docker) echo "${D[*]} run --rm ${extra[*]} busybox /bin/true" ;;
    podman) echo "${P[*]} run --rm ${podman_run_opts[*]} ${extra[*]} busybox /bin/true" ;;
  esac
}
engine_cpu() { # engine_cpu ENGINE -> ns of CPU charged to the engine side so far
  local f
  case $1 in
    podman) f=/sys/fs/cgroup/cpuacct/$tag-podman/conmon/cpuacct.usage ;;
    *) f=$cg/$1/cpuacct.usage ;;
  esac
  cat "$f" 2>/dev/null || echo 0
}

echo "== sanity: exit code, output, network" >&2
for e in berth docker podman; do
  cmd=$(run_cmd "$e" bridge); cmd=${cmd% /bin/true}
  rc=0; out=$($cmd sh -c 'echo "pid=$$"; exit 3' 2>&1) || rc=$?
  [[ $out == pid=1 && $rc == 3 ]] || { echo "sanity: $e printed '$out', exit $rc (expected pid=1, 3)" >&2; exit 1; }
  addr=$($cmd ip -o -4 addr show 2>&1 | grep -v ' lo ' | awk '{print $2, $4}' | head -1)
  [[ -n $addr ]] || { echo "sanity: $e's bridge container has no IPv4 address" >&2; exit 1; }
  cmd=$(run_cmd "$e" none); cmd=${cmd% /bin/true}
  n=$($cmd ip -o link 2>&1 | grep -vc ': lo:' || true)
  [[ $n == 0 ]] || { echo "sanity: $e --network none container has $n non-lo links" >&2; exit 1; }
  echo "   $e: pid=1 exit 3; bridge: $addr; --network none: lo only" >&2
done

timed() { # timed NAME FILE COMMAND RUNS: hyperfine + engine-side CPU delta
  local name=$1 out=$2 cmd=$3 n=$4 e=${1%%:*} c0 c1
  c0=$(engine_cpu "$e")
  hyperfine -N --style basic --warmup "$warmup" --runs "$n" -n "$name" --export-json "$out.json" "$cmd" >&2
  c1=$(engine_cpu "$e")
  echo "$(( (c1 - c0) / (n + warmup) ))" >"$out.cpu"
}
engines=(berth docker podman)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== run --rm busybox /bin/true: $rounds rounds x $((runs / rounds)) runs per engine and network" >&2
for ((i = 0; i < rounds; i++)); do
  for ((k = 0; k < 3; k++)); do
    e=${engines[(i + k) % 3]}
    for net in bridge none; do timed "$e:run:$net" "$tmp/r-$e-$net-$i" "$(run_cmd "$e" "$net")" $((runs / rounds)); done
  done
done

echo "== 10 in parallel (--network none): $rounds rounds x $((par_runs / rounds)) batches per engine" >&2
for e in "${engines[@]}"; do
  cat >"$tmp/par-$e.sh" <<EOF
#!/bin/bash
pids=()
for i in 1 2 3 4 5 6 7 8 9 10; do $(run_cmd "$e" none) & pids+=(\$!); done
rc=0
for p in "\${pids[@]}"; do wait "\$p" || rc=1; done
exit \$rc
EOF
  chmod +x "$tmp/par-$e.sh"
done
for ((i = 0; i < rounds; i++)); do
  for ((k = 0; k < 3; k++)); do
    e=${engines[(i + k) % 3]}
    timed "$e:par" "$tmp/p-$e-$i" "$tmp/par-$e.sh" $((par_runs / rounds))
  done
done

echo "== exec: a running container per engine, $rounds rounds x $((exec_runs / rounds)) execs" >&2
"${B[@]}" run -d --name benchexec --network none busybox sleep 1000000 >/dev/null
"${D[@]}" run -d --name benchexec --network none busybox sleep 1000000 >/dev/null
"${P[@]}" run -d --name benchexec "${podman_run_opts[@]}" --network none busybox sleep 1000000 >/dev/null
declare -A EX=([berth]="${B[*]} exec benchexec true" [docker]="${D[*]} exec benchexec true" [podman]="${P[*]} exec benchexec true")
for e in "${engines[@]}"; do
  rc=0; out=$(${EX[$e]%true} sh -c 'echo "pid=$$"; exit 4') || rc=$?
  [[ $out =~ ^pid=[0-9]+$ && ${out#pid=} -lt 100 && $rc == 4 ]] || { echo "exec sanity: $e printed '$out', exit $rc" >&2; exit 1; }
done

echo "== per-container processes outside the container (one detached container per engine)" >&2
sleep 2
rss_of() { # rss_of PID -> "VmRSS_kB Pss_kB"
  echo "$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status") $(awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup")"
}
find_proc() { # find_proc CGROUPDIR COMM... -> pids in that cgroup (and below) whose comm matches
  local dir=$1; shift
  for p in $(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null); do
    c=$(cat "/proc/$p/comm" 2>/dev/null) || continue
    for want in "$@"; do [[ $c == "$want" ]] && echo "$p"; done
  done
}
: >"$tmp/rss"
for p in $(find_proc "$cg/berth" berth-monitor); do echo "berth berth-monitor $p $(rss_of "$p")" >>"$tmp/rss"; done
for p in $(find_proc "$cg/docker" containerd-shim containerd-shim-runc-v2); do echo "docker containerd-shim $p $(rss_of "$p")" >>"$tmp/rss"; done
for p in $(find_proc "/sys/fs/cgroup/cpuacct/$tag-podman" conmon); do echo "podman conmon $p $(rss_of "$p")" >>"$tmp/rss"; done
cat "$tmp/rss" >&2

for ((i = 0; i < rounds; i++)); do
  for ((k = 0; k < 3; k++)); do
    e=${engines[(i + k) % 3]}
    timed "$e:exec" "$tmp/x-$e-$i" "${EX[$e]}" $((exec_runs / rounds))
  done
done
"${B[@]}" rm -f benchexec >/dev/null; "${D[@]}" rm -f benchexec >/dev/null; "${P[@]}" rm -f -t 0 benchexec >/dev/null

echo "== daemons' own RSS" >&2
for p in "$berth_pid" "$docker_pid" $(find_proc "$cg/docker" containerd); do
  echo "daemon $(cat "/proc/$p/comm") $p $(rss_of "$p")" >>"$tmp/rss"
done

{
  echo "nproc=$(nproc)"
  echo "kernel=$(uname -r)"
  echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "berth=$("$tmp/bin/berthd" --version 2>&1 | head -1) ($berth_origin)"
  echo "docker=client $(docker --version | sed 's/Docker version //'), dockerd $(dockerd --version | sed 's/Docker version //'), $(containerd --version | cut -d' ' -f1,3), $(runc --version | head -1)"
  echo "podman=$(podman --version), $(conmon --version | head -1), $(/usr/lib/podman/netavark --version 2>/dev/null | head -1)"
  echo "hyperfine=$(hyperfine --version)"
  echo "load=$load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"
} >"$tmp/machine"

python3 - "$tmp" "$json_out" "$md_out" <<'PY'
import json, os, statistics, sys, glob
tmp, json_out, md_out = sys.argv[1:]
engines = ["berth", "docker", "podman"]
def collect(prefix):
    wall, cpu_client, cpu_engine = {}, {}, {}
    for e in engines:
        w, cc, ce = [], [], []
        for f in sorted(glob.glob(os.path.join(tmp, f"{prefix.format(e=e)}-*.json"))):
            r = json.load(open(f))["results"][0]
            if any(c != 0 for c in r.get("exit_codes", [])):
                sys.exit(f"{r['command']}: non-zero exit codes {r['exit_codes']}")
            w += r["times"]
            cc.append((len(r["times"]), r["user"] + r["system"]))
            ce.append((len(r["times"]), int(open(f[:-5] + ".cpu").read()) / 1e9))
        wavg = lambda xs: sum(k * v for k, v in xs) / sum(k for k, _ in xs)
        wall[e], cpu_client[e], cpu_engine[e] = w, wavg(cc), wavg(ce)
    return wall, cpu_client, cpu_engine
tables = {}
for key, prefix in [("run, bridge", "r-{e}-bridge"), ("run, --network none", "r-{e}-none"),
                    ("10 in parallel (--network none), per batch", "p-{e}"), ("exec", "x-{e}")]:
    tables[key] = collect(prefix)
machine = dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(tmp, "machine")))
rss = [l.split() for l in open(os.path.join(tmp, "rss"))]
ms = lambda s: f"{s * 1000:.0f}" if s >= 0.1 else f"{s * 1000:.1f}"
lines = [f"- machine: {machine['nproc']} CPUs ({machine['cpu']}), kernel {machine['kernel']}",
         f"- berth: {machine['berth']}",
         f"- docker: {machine['docker']}",
         f"- podman: {machine['podman']}",
         f"- {machine['hyperfine']}",
         f"- load average (1/5/15 min): {machine['load']}", "",
         "| what | engine | n | median wall (ms) | IQR (ms) | CPU client (ms) | CPU engine side (ms) | CPU total (ms) | wall ÷ docker | wall ÷ podman | CPU ÷ docker | CPU ÷ podman |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
summary = {}
for key, (wall, cc, ce) in tables.items():
    med = {e: statistics.median(wall[e]) for e in engines}
    tot = {e: cc[e] + ce[e] for e in engines}
    summary[key] = {"median_s": med, "cpu_client_s": cc, "cpu_engine_s": ce, "cpu_total_s": tot}
    for e in engines:
        q = statistics.quantiles(wall[e], n=4) if len(wall[e]) > 1 else [wall[e][0]] * 3
        lines.append(f"| {key} | {e} | {len(wall[e])} | {ms(med[e])} | {ms(q[0])}–{ms(q[2])} | {ms(cc[e])} | {ms(ce[e])} | {ms(tot[e])} | "
                     f"{med[e]/med['docker']:.2f} | {med[e]/med['podman']:.2f} | {tot[e]/tot['docker']:.2f} | {tot[e]/tot['podman']:.2f} |")
lines += ["", "Per-container processes outside the container (one detached `sleep` container each), and the daemons:", "",
          "| engine | process | pid | VmRSS (MiB) | PSS (MiB) |", "|---|---|---:|---:|---:|"]
for row in rss:
    lines.append(f"| {row[0]} | {row[1]} | {row[2]} | {int(row[3])/1024:.1f} | {int(row[4])/1024:.1f} |")
def verdict(key, what, limit):
    s = summary[key]
    wr = s["median_s"]["berth"] / s["median_s"]["docker"]
    cr = s["cpu_total_s"]["berth"] / s["cpu_total_s"]["docker"]
    if what == "exec":
        return f"- exec ≤ 0.2× docker's wall: {'met' if wr <= limit else 'NOT met'} ({wr:.2f}×; CPU {cr:.2f}×)"
    return (f"- {key}: wall ≤ 0.1× docker: {'met' if wr <= limit else 'NOT met'} ({wr:.2f}×); "
            f"CPU ≤ 0.1× docker: {'met' if cr <= limit else 'NOT met'} ({cr:.2f}×)")
lines += ["", "Targets (issue 6):", "", verdict("run, bridge", "run", 0.1), verdict("run, --network none", "run", 0.1),
          verdict("exec", "exec", 0.2)]
print("\n".join(lines))
if md_out:
    open(md_out, "w").write("\n".join(lines) + "\n")
if json_out:
    raw = {k: v[0] for k, v in tables.items()}
    json.dump({"machine": machine, "summary": summary, "wall_seconds": raw, "rss": rss}, open(json_out, "w"), indent=1)
PY
