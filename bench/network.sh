#!/usr/bin/env bash
# Networking benchmark (issue 8): berthd against dockerd in one run.
#
#   bench/network.sh [--runs N] [--rounds R] [--warmup W] [--tp-rounds T] [--duration S]
#                    [--iperf-time S] [--no-iperf] [--no-userland-proxy] [--json FILE] [--markdown FILE]
#
# 1. Per-container network cost: `ENGINE run --rm busybox /bin/true` (hyperfine -N, N runs per
#    case in R rounds whose engine order alternates, W warm-ups per call) with --network none,
#    the default bridge, a user network (`network create --subnet … mynet`, `--network mynet`),
#    and the default bridge with 1 and 10 published ports (`-p H:80`, `-p H:80 … -p H+9:89`).
#    Added cost = median(case) − median(--network none), per engine. CPU: the client's user+sys
#    (hyperfine) and the engine side, read from a cpuacct cgroup each daemon is put in before it
#    starts (berthd + berth-monitor + berth-runtime + the nft/nsenter it runs; dockerd +
#    containerd + shims + runc + docker-proxy), per run.
# 2. Throughput over a published port, T rounds, engines alternating test by test:
#    - HTTP: one container per engine runs busybox `httpd -f -p 80 -h /www` (files: /www/big,
#      1 MiB, and /www/small, 3 bytes, baked into the image), published on a host port;
#      `wrk -t2 -c32 -dS` against /big and /small from
#        loopback: the bench netns itself, http://127.0.0.1:PORT (berth: nftables DNAT in the
#                  output hook; docker: its userland docker-proxy, dockerd's default, or
#                  iptables DNAT with --no-userland-proxy, which starts dockerd with
#                  --userland-proxy=false);
#        outside:  a second namespace ("another host", as tests/Berth.Network.Tests' NetLab
#                  does it) joined to the bench netns by a veth pair (bench 10.199.77.1/24,
#                  outside 10.199.77.2/24), http://10.199.77.1:PORT (DNAT in prerouting, both);
#        direct:   the bench netns to the container's own address, port 80: no NAT, no proxy
#                  (the reference: what the bridge and veth alone give).
#    - iperf3 (unless --no-iperf): a container per engine runs `iperf3 -s` (the host's
#      /usr/bin/iperf3 and the libraries ldd lists, in the same image), published on a host
#      port; `iperf3 -c … -t S` and `-R` (server to client) from loopback and outside.
#    Numbers per round are kept; the tables show the median over rounds.
#
# Isolation, as bench/engine-run.sh: everything lives in a private network namespace
# bench<pid> (bridges, veths, nftables and iptables rules) plus benchout<pid> (the outside
# host); berthd (a private copy of artifacts/bin) runs with --bridge-netns /run/netns/bench<pid>
# and --bip 172.30.0.0/16; dockerd runs as `nsenter --net=/run/netns/bench<pid> unshare --mount
# --propagation private` with a fresh /run tmpfs, state in the temp dir, --ip-forward=false
# (the script sets net.ipv4.ip_forward=1 in the bench netns only; the host's is not touched) and
# --bip 172.17.0.1/16. Engines publish different host ports (berth 18xxx, docker 28xxx).
# In the two bench namespaces only: ip_local_port_range 1024-65000 and tcp_tw_reuse=1 for
# wrk's many short connections (busybox httpd closes each connection after one response).
# The images are `import`ed into both engines from tars made here: busybox:latest (Debian's
# /bin/busybox plus applet links) and netbench:latest (the same plus /www and iperf3).
#
# Cleanup (trap on EXIT): containers removed, daemons stopped by PID, leftover processes of the
# script's cgroups killed, mounts under the temp dir unmounted, both namespaces and the script's
# cgroups deleted, the temp dir removed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

runs=30 rounds=3 warmup=2 tp_rounds=3 duration=10 iperf_time=10 iperf=1 userland_proxy=true json_out= md_out=
while (($#)); do
  case $1 in
    --runs) runs=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --tp-rounds) tp_rounds=$2; shift ;;
    --duration) duration=$2; shift ;;
    --iperf-time) iperf_time=$2; shift ;;
    --no-iperf) iperf=0 ;;
    --no-userland-proxy) userland_proxy=false ;;
    --json) json_out=$2; shift ;;
    --markdown) md_out=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "network.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
((runs % rounds == 0)) || { echo "network.sh: --runs must be a multiple of --rounds" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "network.sh: must run as root" >&2; exit 1; }
for tool in docker dockerd containerd hyperfine nsenter unshare ip python3 findmnt wrk curl ldd; do
  command -v "$tool" >/dev/null || { echo "network.sh: $tool not found" >&2; exit 1; }
done
((iperf == 0)) || command -v iperf3 >/dev/null || { echo "network.sh: iperf3 not found (or --no-iperf)" >&2; exit 1; }
[[ -x /bin/busybox ]] || { echo "network.sh: /bin/busybox missing (apt-get install -y busybox-static)" >&2; exit 1; }
for b in berth berthd berth-monitor berth-runtime; do
  [[ -x $repo/artifacts/bin/$b ]] || { echo "network.sh: artifacts/bin/$b missing (./build.sh)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/net-bench.XXXXXX)
tag=netbench-$$
netns=bench$$
outns=benchout$$
cg=/sys/fs/cgroup/cpuacct/$tag
host_ip=10.199.77.1 out_ip=10.199.77.2
berth_pid= docker_pid=
mkdir -p "$tmp/bin"
for b in berth berthd berth-monitor berth-runtime; do install -m 0755 "$repo/artifacts/bin/$b" "$tmp/bin/$b"; done
berth_origin="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$repo" && [[ -n $(git status --porcelain -- src native 2>/dev/null) ]] && echo ' + uncommitted src changes'), berthd sha256 $(sha256sum "$tmp/bin/berthd" | cut -c1-12)"

B=("$tmp/bin/berth" -H "unix://$tmp/berth.sock")
D=(docker -H "unix://$tmp/docker.sock")
export DOCKER_CONFIG=$tmp/docker-cli
IN=(nsenter "--net=/run/netns/$netns")
OUT=(nsenter "--net=/run/netns/$outns")

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
  stop_pid "$berth_pid"
  stop_pid "$docker_pid"
  # Monitors, shims and docker-proxies left behind: every process still in this run's cgroups
  # was started by this script.
  for d in $(our_cgroups); do
    for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  sleep 0.5
  findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | while read -r m; do umount -l "$m"; done
  ip netns del "$outns" 2>/dev/null
  ip netns del "$netns" 2>/dev/null
  for d in $(our_cgroups); do rmdir "$d" 2>/dev/null; done
  rm -rf "$tmp"
  local left; left=$(our_cgroups; findmnt -rn -o TARGET | grep "^$tmp" ; ip netns list 2>/dev/null | grep -w -e "$netns" -e "$outns")
  if [[ -n $left ]]; then echo "network.sh: left behind:"$'\n'"$left" >&2; rc=1; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- namespaces: the bench "host" and an "outside host" joined by a veth pair
ip netns add "$netns"
ip netns add "$outns"
ip -n "$netns" link set lo up
ip -n "$outns" link set lo up
ip -n "$netns" link add uplink type veth peer name eth0 netns "$outns"
ip -n "$netns" addr add "$host_ip/24" dev uplink
ip -n "$netns" link set uplink up
ip -n "$outns" addr add "$out_ip/24" dev eth0
ip -n "$outns" link set eth0 up
"${IN[@]}" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
for ns in "$netns" "$outns"; do
  nsenter "--net=/run/netns/$ns" sh -c 'echo "1024 65000" > /proc/sys/net/ipv4/ip_local_port_range; echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse'
done
for e in berth docker; do mkdir -p "$cg/$e"; done

# --- images
mkdir -p "$tmp/rootfs/bin"
cp /bin/busybox "$tmp/rootfs/bin/busybox"
for a in sh echo true false ls cat sleep ps id hostname env head wc printf kill touch mkdir pwd ip grep awk tail test httpd netstat wget; do
  ln -s busybox "$tmp/rootfs/bin/$a"
done
tar -C "$tmp/rootfs" --numeric-owner --owner=0 --group=0 -cf "$tmp/busybox.tar" .
mkdir -p "$tmp/rootfs/www"
head -c 1048576 /dev/urandom >"$tmp/rootfs/www/big"
echo ok >"$tmp/rootfs/www/small"
if ((iperf)); then
  mkdir -p "$tmp/rootfs/usr/bin" "$tmp/rootfs/tmp"
  chmod 1777 "$tmp/rootfs/tmp" # iperf3 makes its stream buffers with mkstemp in /tmp
  cp -L /usr/bin/iperf3 "$tmp/rootfs/usr/bin/iperf3"
  for lib in $(ldd /usr/bin/iperf3 | grep -o '/[^ ]*'); do
    mkdir -p "$tmp/rootfs$(dirname "$lib")"
    cp -L "$lib" "$tmp/rootfs$lib"
  done
fi
tar -C "$tmp/rootfs" --numeric-owner --owner=0 --group=0 -cf "$tmp/netbench.tar" .

# --- daemons, each started inside its cpuacct cgroup
in_cg() { local g=$1; shift; echo "echo \$\$ > $cg/$g/cgroup.procs && exec $*"; }
mkdir -p "$tmp/berth" "$tmp/docker" "$tmp/docker-cli"
echo "{}" >"$tmp/docker-cli/config.json"
sh -c "$(in_cg berth "$tmp/bin/berthd" --data-root "$tmp/berth/data" --exec-root "$tmp/berth/exec" \
  -H "unix://$tmp/berth.sock" --pidfile "$tmp/berth/berthd.pid" --bridge-netns "/run/netns/$netns" --bip 172.30.0.0/16)" \
  >"$tmp/berthd.log" 2>&1 &
berth_pid=$!
printf '%s\n' 'mount -t tmpfs -o mode=0755 tmpfs /run' \
  "exec dockerd --data-root $tmp/docker/data --exec-root $tmp/docker/exec -H unix://$tmp/docker.sock --pidfile $tmp/docker/dockerd.pid --cgroup-parent /$tag-docker --ip-forward=false --bip 172.17.0.1/16 --userland-proxy=$userland_proxy" \
  >"$tmp/docker/start.sh"
sh -c "$(in_cg docker nsenter "--net=/run/netns/$netns" unshare --mount --propagation private sh "$tmp/docker/start.sh")" \
  >"$tmp/dockerd.log" 2>&1 &
docker_pid=$!
for ((i = 0; i < 300; i++)); do
  "${B[@]}" version >/dev/null 2>&1 && "${D[@]}" version >/dev/null 2>&1 && break
  kill -0 "$berth_pid" && kill -0 "$docker_pid" || { tail -20 "$tmp/berthd.log" "$tmp/dockerd.log" >&2; exit 1; }
  sleep 0.1
done
"${B[@]}" version >/dev/null && "${D[@]}" version >/dev/null || { tail -20 "$tmp/berthd.log" "$tmp/dockerd.log" >&2; exit 1; }

echo "== import busybox:latest, netbench:latest" >&2
for E in B D; do
  declare -n cli=$E
  "${cli[@]}" import "$tmp/busybox.tar" busybox:latest >/dev/null
  "${cli[@]}" import "$tmp/netbench.tar" netbench:latest >/dev/null
  "${cli[@]}" network create --subnet "$([[ $E == B ]] && echo 172.31.0.0/16 || echo 172.29.0.0/16)" mynet >/dev/null
  unset -n cli
done

declare -A PORTBASE=([berth]=18080 [docker]=28080)
run_cmd() { # run_cmd ENGINE CASE -> the `run --rm busybox /bin/true` argv, one string
  local e=$1 c=$2 extra=() cli i b=${PORTBASE[$1]}
  case $c in
    none) extra=(--network none) ;;
    bridge) ;;
    mynet) extra=(--network mynet) ;;
    ports1) extra=(-p "$b:80") ;;
    ports10) for ((i = 0; i < 10; i++)); do extra+=(-p "$((b + i)):$((80 + i))"); done ;;
  esac
  [[ $e == berth ]] && cli="${B[*]}" || cli="${D[*]}"
  echo "$cli run --rm ${extra[*]} busybox /bin/true"
}
engine_cpu() { cat "$cg/$1/cpuacct.usage" 2>/dev/null || echo 0; }
cases=(none bridge mynet ports1 ports10)
engines=(berth docker)

echo "== sanity" >&2
for e in "${engines[@]}"; do
  for c in "${cases[@]}"; do
    cmd=$(run_cmd "$e" "$c"); cmd=${cmd% /bin/true}
    n=$($cmd ip -o -4 addr show 2>&1 | grep -vc ' lo ' || true)
    want=1; [[ $c == none ]] && want=0
    [[ $n == "$want" ]] || { echo "sanity: $e $c container has $n non-lo IPv4 addresses (want $want)" >&2; $cmd ip -o -4 addr show >&2; exit 1; }
  done
  echo "   $e: none = lo only; bridge, mynet, ports: one address" >&2
done

timed() { # timed NAME FILE COMMAND RUNS: hyperfine + engine-side CPU delta
  local name=$1 out=$2 cmd=$3 n=$4 e=${1%%:*} c0 c1
  c0=$(engine_cpu "$e")
  # -i: a failed run is kept out of the medians and counted (its output is in $out.log)
  hyperfine -N -i --style basic --warmup "$warmup" --runs "$n" -n "$name" --output "$out.log" --export-json "$out.json" "$cmd" >&2
  c1=$(engine_cpu "$e")
  echo "$(( (c1 - c0) / (n + warmup) ))" >"$out.cpu"
}
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_run0=$(load)
echo "== run --rm busybox /bin/true: $rounds rounds x $((runs / rounds)) runs per engine and case" >&2
for ((i = 0; i < rounds; i++)); do
  for ((k = 0; k < 2; k++)); do
    e=${engines[(i + k) % 2]}
    for c in "${cases[@]}"; do timed "$e:$c" "$tmp/r-$e-$c-$i" "$(run_cmd "$e" "$c")" $((runs / rounds)); done
  done
done
load_run1=$(load)

echo "== throughput servers" >&2
declare -A WEBPORT=([berth]=18000 [docker]=28000) IPERFPORT=([berth]=15201 [docker]=25201) WEBIP=()
for e in "${engines[@]}"; do
  [[ $e == berth ]] && cli=("${B[@]}") || cli=("${D[@]}")
  "${cli[@]}" run -d --name web -p "${WEBPORT[$e]}:80" netbench:latest httpd -f -p 80 -h /www >/dev/null
  WEBIP[$e]=$("${cli[@]}" inspect -f '{{.NetworkSettings.IPAddress}}' web)
  ((iperf)) && "${cli[@]}" run -d --name iperf -p "${IPERFPORT[$e]}:5201" netbench:latest iperf3 -s -p 5201 >/dev/null
done
fetch() { # fetch NS-ARGV... URL: the body, retried for up to 10 s
  local url=${*: -1} i
  for ((i = 0; i < 100; i++)); do
    "${@:1:$#-1}" curl -fsS --max-time 3 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
big_sum=$(sha256sum "$tmp/rootfs/www/big" | cut -c1-64)
for e in "${engines[@]}"; do
  p=${WEBPORT[$e]}
  for where in "loopback 127.0.0.1:$p" "outside $host_ip:$p" "direct ${WEBIP[$e]}:80"; do
    set -- $where
    [[ $1 == outside ]] && ns=("${OUT[@]}") || ns=("${IN[@]}")
    [[ $(fetch "${ns[@]}" "http://$2/small") == ok ]] || { echo "sanity: $e $1 http://$2/small does not answer ok" >&2; exit 1; }
    [[ $(fetch "${ns[@]}" "http://$2/big" | sha256sum | cut -c1-64) == "$big_sum" ]] || { echo "sanity: $e $1 http://$2/big differs" >&2; exit 1; }
  done
  if ((iperf)); then
    for where in "loopback 127.0.0.1" "outside $host_ip"; do
      set -- $where
      [[ $1 == outside ]] && ns=("${OUT[@]}") || ns=("${IN[@]}")
      ok=0
      for ((i = 0; i < 50; i++)); do "${ns[@]}" iperf3 -c "$2" -p "${IPERFPORT[$e]}" -t 1 >"$tmp/iperf-sanity" 2>&1 && { ok=1; break; }; sleep 0.2; done
      ((ok)) || { echo "sanity: $e iperf3 $1 $2:${IPERFPORT[$e]} fails:" >&2; tail -3 "$tmp/iperf-sanity" >&2; [[ $e == berth ]] && cli=("${B[@]}") || cli=("${D[@]}"); "${cli[@]}" logs iperf 2>&1 | tail -5 >&2; exit 1; }
    done
  fi
  echo "   $e: HTTP answers on 127.0.0.1:$p, $host_ip:$p (outside), ${WEBIP[$e]}:80; iperf3 $( ((iperf)) && echo ok || echo skipped)" >&2
done
if [[ $userland_proxy == true ]]; then
  pgrep_proxy=$(for p in $(cat "$cg/docker/cgroup.procs"); do cat "/proc/$p/comm" 2>/dev/null || true; done | grep -c '^docker-proxy$' || true)
  echo "   docker-proxy processes running: $pgrep_proxy" >&2
fi

tests=(http:loopback:big http:loopback:small http:outside:big http:outside:small http:direct:big http:direct:small)
((iperf)) && tests+=(iperf:loopback:up iperf:loopback:down iperf:outside:up iperf:outside:down)
tp_one() { # tp_one ENGINE TEST ROUND
  local e=$1 kind where what r=$3 ns target port f
  IFS=: read -r kind where what <<<"$2"
  [[ $where == outside ]] && ns=("${OUT[@]}") || ns=("${IN[@]}")
  case $where in
    loopback) target=127.0.0.1 ;;
    outside) target=$host_ip ;;
    direct) target=${WEBIP[$e]} ;;
  esac
  f=$tmp/t-$e-$kind-$where-$what-$r
  if [[ $kind == http ]]; then
    [[ $where == direct ]] && port=80 || port=${WEBPORT[$e]}
    "${ns[@]}" wrk -t2 -c32 "-d${duration}s" "http://$target:$port/$what" >"$f.txt" 2>&1 || true
    echo "   $e $where /$what: $(grep -E 'Requests/sec|Transfer/sec' "$f.txt" | tr -s ' ' | tr '\n' ' ')" >&2
  else
    local rev=(); [[ $what == down ]] && rev=(-R)
    "${ns[@]}" iperf3 -c "$target" -p "${IPERFPORT[$e]}" -t "$iperf_time" "${rev[@]}" -J >"$f.json" 2>&1 || true
    sleep 0.5 # let the server get back to listening
    echo "   $e iperf3 $where $what: $(python3 -c 'import json,sys; j = json.load(open(sys.argv[1])); e = j.get("end", {}); print("%.2f Gbit/s, %s retransmits" % (e["sum_received"]["bits_per_second"] / 1e9, e.get("sum_sent", {}).get("retransmits")) if "sum_received" in e else "failed: " + j.get("error", "?"))' "$f.json" 2>/dev/null || echo "failed: $(head -c 300 "$f.json")")" >&2
  fi
}
load_tp0=$(load)
echo "== throughput: $tp_rounds rounds, wrk -t2 -c32 -d${duration}s, iperf3 -t $iperf_time" >&2
for ((r = 0; r < tp_rounds; r++)); do
  for ((t = 0; t < ${#tests[@]}; t++)); do
    for ((k = 0; k < 2; k++)); do
      tp_one "${engines[(r + t + k) % 2]}" "${tests[t]}" "$r"
    done
  done
done
load_tp1=$(load)
"${B[@]}" rm -f web >/dev/null; "${D[@]}" rm -f web >/dev/null
if ((iperf)); then "${B[@]}" rm -f iperf >/dev/null; "${D[@]}" rm -f iperf >/dev/null; fi

{
  echo "nproc=$(nproc)"
  echo "kernel=$(uname -r)"
  echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "berth=$("$tmp/bin/berthd" --version 2>&1 | head -1) ($berth_origin)"
  echo "docker=client $(docker --version | sed 's/Docker version //'), dockerd $(dockerd --version | sed 's/Docker version //'), $(containerd --version | cut -d' ' -f1,3), $(runc --version | head -1)"
  echo "tools=$(hyperfine --version), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)$( ((iperf)) && echo ", $(iperf3 --version | head -1 | cut -d' ' -f1-2)")"
  echo "userland_proxy=$userland_proxy"
  echo "load_run=$load_run0 before, $load_run1 after"
  echo "load_tp=$load_tp0 before, $load_tp1 after"
  echo "date=$(date '+%Y-%m-%d %H:%M')"
  echo "duration=$duration"
  echo "iperf_time=$iperf_time"
} >"$tmp/machine"

python3 - "$tmp" "$json_out" "$md_out" "${tests[*]}" <<'PY'
import json, os, re, statistics, sys, glob
tmp, json_out, md_out, tests = sys.argv[1:]
tests = tests.split()
engines = ["berth", "docker"]
cases = ["none", "bridge", "mynet", "ports1", "ports10"]
label = {"none": "--network none", "bridge": "default bridge", "mynet": "--network mynet (user network)",
         "ports1": "bridge + 1 published port", "ports10": "bridge + 10 published ports"}
machine = dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(tmp, "machine")))
ms = lambda s: f"{s * 1000:.0f}" if abs(s) >= 0.1 else f"{s * 1000:.1f}"
# --- per-container cost
run, failures = {}, []
for e in engines:
    for c in cases:
        w, cc, ce = [], [], []
        for f in sorted(glob.glob(os.path.join(tmp, f"r-{e}-{c}-*.json"))):
            r = json.load(open(f))["results"][0]
            codes = r.get("exit_codes") or [0] * len(r["times"])
            bad = [c for c in codes if c != 0]
            if bad:
                failures.append((e, c, bad, open(f[:-5] + ".log", errors="replace").read().strip()[-600:]))
            w += [t for t, code in zip(r["times"], codes) if code == 0]
            cc.append((len(r["times"]), r["user"] + r["system"]))
            ce.append((len(r["times"]), int(open(f[:-5] + ".cpu").read()) / 1e9))
        wavg = lambda xs: sum(k * v for k, v in xs) / sum(k for k, _ in xs)
        run[e, c] = {"times": w, "median": statistics.median(w), "q": statistics.quantiles(w, n=4) if len(w) > 1 else w * 3,
                     "cpu_client": wavg(cc), "cpu_engine": wavg(ce)}
lines = [f"- date: {machine['date']}; machine: {machine['nproc']} CPUs ({machine['cpu']}), kernel {machine['kernel']}",
         f"- berth: {machine['berth']}",
         f"- docker: {machine['docker']}; userland-proxy={machine['userland_proxy']}",
         f"- {machine['tools']}",
         f"- load average (1/5/15 min): {machine['load_run']} (per-container runs); {machine['load_tp']} (throughput)", "",
         "Per-container cost, `run --rm busybox /bin/true`:", "",
         "| engine | network | n | median wall (ms) | IQR (ms) | added wall vs none (ms) | CPU client (ms) | CPU engine side (ms) | added engine CPU vs none (ms) |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
for e in engines:
    base = run[e, "none"]
    for c in cases:
        x = run[e, c]
        added = "" if c == "none" else f"{(x['median'] - base['median']) * 1000:+.1f}"
        added_cpu = "" if c == "none" else f"{(x['cpu_engine'] - base['cpu_engine']) * 1000:+.1f}"
        lines.append(f"| {e} | {label[c]} | {len(x['times'])} | {ms(x['median'])} | {ms(x['q'][0])}–{ms(x['q'][2])} | {added} | "
                     f"{ms(x['cpu_client'])} | {ms(x['cpu_engine'])} | {added_cpu} |")
if failures:
    lines += ["", "Failed runs (left out of the medians above; exit codes and the engine's output):", ""]
    for e, c, bad, log in failures:
        lines.append(f"- {e}, {label[c]}: exit codes {bad}: `{' '.join(log.split())[:400]}`")
# --- throughput
def unit(v, u):
    return float(v) * {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3}[u]
def parse_wrk(path):
    t = open(path).read()
    m = re.search(r"Requests/sec:\s+([\d.]+)", t)
    if not m: return None
    tr = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", t)
    errs = 0
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
    if se: errs += sum(int(g) for g in se.groups())
    n2 = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    if n2: errs += int(n2.group(1))
    total = re.search(r"(\d+) requests in", t)
    return {"rps": float(m.group(1)), "mibps": unit(tr.group(1), tr.group(2)) / 1024**2, "errors": errs, "requests": int(total.group(1)) if total else 0}
def parse_iperf(path):
    try:
        j = json.load(open(path))
        return {"gbps": j["end"]["sum_received"]["bits_per_second"] / 1e9, "retransmits": j["end"].get("sum_sent", {}).get("retransmits", 0)}
    except Exception:
        return None
tp = {}
for t in tests:
    kind, where, what = t.split(":")
    for e in engines:
        rs = []
        for f in sorted(glob.glob(os.path.join(tmp, f"t-{e}-{kind}-{where}-{what}-*" + (".txt" if kind == "http" else ".json")))):
            rs.append((parse_wrk if kind == "http" else parse_iperf)(f))
        tp[t, e] = rs
path_label = {"loopback": "bench netns → 127.0.0.1:port", "outside": "outside netns → 10.199.77.1:port", "direct": "bench netns → container IP:80 (no NAT)"}
docker_loop = "docker-proxy" if machine["userland_proxy"] == "true" else "iptables DNAT"
lines += ["", f"HTTP, busybox httpd, `wrk -t2 -c32 -d{machine['duration']}s` (median over rounds; docker's loopback path is {docker_loop}):", "",
          "| path | file | engine | requests/s | transfer (MiB/s) | errors (all rounds) | rounds | berth ÷ docker (req/s) |",
          "|---|---|---|---:|---:|---:|---:|---:|"]
verdicts = []
med = lambda xs: statistics.median(xs) if xs else float("nan")
for t in tests:
    kind, where, what = t.split(":")
    if kind != "http": continue
    rps = {}
    for e in engines:
        ok = [x for x in tp[t, e] if x]
        rps[e] = med([x["rps"] for x in ok])
    for e in engines:
        ok = [x for x in tp[t, e] if x]
        ratio = f"{rps['berth'] / rps['docker']:.2f}" if e == "berth" and rps["docker"] else ""
        lines.append(f"| {path_label[where]} | /{what} ({'1 MiB' if what == 'big' else '3 B'}) | {e} | {rps[e]:.0f} | {med([x['mibps'] for x in ok]):.1f} | "
                     f"{sum(x['errors'] for x in ok)} | {len(ok)}/{len(tp[t, e])} | {ratio} |")
    if where != "direct":
        verdicts.append((f"HTTP {where} /{what}", rps["berth"], rps["docker"], "req/s"))
if any(t.startswith("iperf") for t in tests):
    lines += ["", f"iperf3, one TCP stream, `-t {machine['iperf_time']}` (up: client → container; down: `-R`), median over rounds:", "",
              "| path | direction | engine | Gbit/s | retransmits (median) | rounds | berth ÷ docker |", "|---|---|---|---:|---:|---:|---:|"]
    for t in tests:
        kind, where, what = t.split(":")
        if kind != "iperf": continue
        g = {}
        for e in engines:
            g[e] = med([x["gbps"] for x in tp[t, e] if x])
        for e in engines:
            ok = [x for x in tp[t, e] if x]
            ratio = f"{g['berth'] / g['docker']:.2f}" if e == "berth" and g["docker"] else ""
            lines.append(f"| {path_label[where]} | {what} | {e} | {g[e]:.2f} | {med([x['retransmits'] for x in ok]):.0f} | {len(ok)}/{len(tp[t, e])} | {ratio} |")
        verdicts.append((f"iperf3 {where} {what}", g["berth"], g["docker"], "Gbit/s"))
added = (run["berth", "bridge"]["median"] - run["berth", "none"]["median"]) * 1000
lines += ["", "Targets (issue 8):", "",
          f"- network setup + teardown ≤ 5 ms added per container (berth, default bridge − none): {'met' if added <= 5 else 'NOT met'} ({added:+.1f} ms; docker {(run['docker', 'bridge']['median'] - run['docker', 'none']['median']) * 1000:+.1f} ms)"]
for name, b, d, u in verdicts:
    lines.append(f"- throughput ≥ docker's, {name}: {'met' if b >= d else 'NOT met'} ({b:.2f} vs {d:.2f} {u}, {b / d:.2f}×)" if d else f"- {name}: no docker figure")
print("\n".join(lines))
if md_out:
    open(md_out, "w").write("\n".join(lines) + "\n")
if json_out:
    json.dump({"machine": machine,
               "run": {f"{e}:{c}": v for (e, c), v in run.items()},
               "throughput": {f"{t}:{e}": v for (t, e), v in tp.items()}}, open(json_out, "w"), indent=1)
PY
