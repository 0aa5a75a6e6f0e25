#!/usr/bin/env bash
# Image benchmarks, peers in one run (results in docs/benchmarks.md, "Images: pull and unpack"):
#  1. pull of a small busybox image (~1 MB gzip) from a local docker-registry on 127.0.0.1:
#     `berth pull` vs `docker pull` (a dockerd started here, in a temp dir) vs `podman pull`,
#     each pull into a clean store (the image removed between runs), rounds interleaved.
#  2. unpack of one large gzip layer (a tar of /usr/bin + /usr/lib/python3.11 by default):
#     Berth's LayerApplier (bench/layer-apply.cs) and `berth import` vs `tar -xzf`, into tmpfs and disk.
#
# Usage: sudo bench/image-pull.sh [--runs N] [--unpack-runs N] [--layer-src "DIR…"] [--skip-unpack]
# Needs root, docker-registry, docker.io (dockerd), podman, busybox-static; artifacts/bin (./build.sh):
# berth pulls through a berthd started here (--bridge none, state in the temp dir), as docker
# pulls through its dockerd.
# Everything it starts is stopped by PID; the temp dirs are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=11 unpack_runs=3 layer_src="/usr/bin /usr/lib/python3.11" skip_unpack=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --unpack-runs) unpack_runs=$2; shift 2 ;;
    --layer-src) layer_src=$2; shift 2 ;;
    --skip-unpack) skip_unpack=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
berth=$PWD/artifacts/bin/berth berthd=$PWD/artifacts/bin/berthd
[[ -x $berth && -x $berthd ]] || { echo "missing $berth or $berthd: run ./build.sh" >&2; exit 1; }
for tool in docker-registry dockerd docker podman /bin/busybox; do command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }; done

tmp=$(mktemp -d /tmp/berth-bench-image.XXXXXX)
shm=$(mktemp -d /dev/shm/berth-bench-image.XXXXXX)
registry_pid="" dockerd_pid="" berthd_pid=""
stop_berthd() { # berthd by PID: TERM, then KILL after 10 s
  [[ -n $berthd_pid ]] || return 0
  kill "$berthd_pid" 2>/dev/null && for _ in $(seq 100); do kill -0 "$berthd_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$berthd_pid" 2>/dev/null || true; berthd_pid="" # gone already: not an error under set -e
}
start_berthd() { # start_berthd DATA_ROOT: a berthd of this run on $tmp/berth.sock
  "$berthd" --data-root "$1" --exec-root "$tmp/berth-exec" -H "unix://$tmp/berth.sock" --pidfile "$tmp/berthd.pid" \
    --bridge none --insecure-registry "127.0.0.1:$port" >>"$tmp/berthd.log" 2>&1 &
  berthd_pid=$!
  for _ in $(seq 100); do B version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "berthd did not start:" >&2; cat "$tmp/berthd.log" >&2; exit 1
}
# dockerd turns net.ipv4.ip_forward on at start unless told not to (--ip-forward=false below);
# whatever happens, the host's value is put back.
ip_forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
cleanup() {
  set +e
  stop_berthd
  [[ -n $dockerd_pid ]] && kill "$dockerd_pid" 2>/dev/null && for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
  [[ -n $dockerd_pid ]] && kill -9 "$dockerd_pid" 2>/dev/null
  [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
  podman --root "$tmp/podman/root" --runroot "$tmp/podman/run" --storage-driver overlay system reset -f >/dev/null 2>&1
  # dockerd's and podman's overlay mounts under the temp dirs, deepest first.
  for m in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^($tmp|$shm)" | sort -r); do umount -l "$m"; done
  rm -rf "$tmp" "$shm"
  echo "$ip_forward_before" >/proc/sys/net/ipv4/ip_forward
}
trap cleanup EXIT

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.4f\n", (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

# ---- registry and the image -----------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$tmp/registry"
cat > "$tmp/registry/config.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $tmp/registry/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YAML
docker-registry serve "$tmp/registry/config.yml" >"$tmp/registry/log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
image=127.0.0.1:$port/bench/busybox:1

mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/etc" "$tmp/rootfs/tmp"
cp /bin/busybox "$tmp/rootfs/bin/"
for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -s busybox "$tmp/rootfs/bin/$a"; done
tar -C "$tmp/rootfs" -czf "$tmp/busybox.tar.gz" .
# docker import compresses the layer with gzip (berth import keeps it uncompressed), so the
# pushed image is what a registry usually serves: one gzip layer.
B() { BERTH_HOST="unix://$tmp/berth.sock" "$berth" "$@"; }
start_berthd "$tmp/berth"

# ---- dockerd, in the temp dir ---------------------------------------------------------------
dockerd --data-root "$tmp/docker/data" --exec-root "$tmp/docker/exec" -H "unix://$tmp/docker/docker.sock" \
  --pidfile "$tmp/docker/docker.pid" --bridge=none --iptables=false --ip-masq=false --ip6tables=false --ip-forward=false \
  --insecure-registry "127.0.0.1:$port" --storage-driver overlay2 >"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
D() { docker -H "unix://$tmp/docker/docker.sock" "$@"; }
for _ in $(seq 300); do D version >/dev/null 2>&1 && break; sleep 0.1; done
D version --format 'docker client {{.Client.Version}}, dockerd {{.Server.Version}}'
P() { podman --root "$tmp/podman/root" --runroot "$tmp/podman/run" --storage-driver overlay "$@"; }

D import "$tmp/busybox.tar.gz" "$image" >/dev/null
D push "$image" >/dev/null
D rmi "$image" >/dev/null
layer_size=$(curl -fs -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "http://127.0.0.1:$port/v2/bench/busybox/manifests/1" | python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')
echo "image $image: one layer, $layer_size bytes compressed"

# Sanity: each engine pulls it once and sees busybox in it.
B pull -q "$image" >/dev/null; B rmi "$image" >/dev/null
D pull -q "$image" >/dev/null; D rmi "$image" >/dev/null
P pull -q --tls-verify=false "$image" >/dev/null; P rmi "$image" >/dev/null

: >"$tmp/berth.times"; : >"$tmp/docker.times"; : >"$tmp/podman.times"
for i in $(seq "$runs"); do
  # rotate the order each round so that drift hits all three alike
  order=(berth docker podman); r=$((i % 3)); order=("${order[@]:r}" "${order[@]:0:r}")
  for t in "${order[@]}"; do
    case $t in
      berth)  sync; s=$(now); B pull -q "$image" >/dev/null; e=$(now); B rmi "$image" >/dev/null ;;
      docker) sync; s=$(now); D pull -q "$image" >/dev/null; e=$(now); D rmi "$image" >/dev/null ;;
      podman) sync; s=$(now); P pull -q --tls-verify=false "$image" >/dev/null; e=$(now); P rmi "$image" >/dev/null ;;
    esac
    echo "$e - $s" | bc >>"$tmp/$t.times"
  done
done
mb=$(median <"$tmp/berth.times"); md=$(median <"$tmp/docker.times"); mp=$(median <"$tmp/podman.times")
echo
echo "## pull of a small image ($layer_size bytes), $runs runs each, clean store each run"
printf '| %-22s | %10s | %10s | %12s |\n' engine "median (s)" "min (s)" "vs docker"
printf '| %-22s | %10s | %10s | %12s |\n' "---" "---" "---" "---"
for t in berth docker podman; do
  m=$(median <"$tmp/$t.times"); mn=$(sort -n "$tmp/$t.times" | head -1)
  printf '| %-22s | %10.3f | %10.3f | %11.2fx |\n' "$t pull" "$m" "$mn" "$(echo "$m / $md" | bc -l)"
done

D rmi -f "$image" >/dev/null 2>&1 || true
kill "$dockerd_pid"; for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done; dockerd_pid=""
stop_berthd

[[ $skip_unpack == 1 ]] && exit 0

# ---- unpack of a large layer --------------------------------------------------------------------
# shellcheck disable=SC2086
tar -cf - $layer_src 2>/dev/null | gzip -6 >"$tmp/layer.tar.gz"
usize=$(gzip -l "$tmp/layer.tar.gz" | awk 'NR==2 {print $2}')
csize=$(stat -c %s "$tmp/layer.tar.gz")
files=$(tar -tzf "$tmp/layer.tar.gz" | wc -l)
echo
echo "## unpack of one gzip layer: $layer_src — $files entries, $((usize/1048576)) MiB uncompressed, $((csize/1048576)) MiB gzip"
dotnet run bench/layer-apply.cs -c Release -- "$tmp/layer.tar.gz" "$shm/warm" >/dev/null 2>&1 # compile + page cache
rm -rf "$shm/warm"
printf '| %-34s | %-6s | %10s | %12s | %12s |\n' what target "median (s)" "MB/s (unc.)" "vs tar"
printf '| %-34s | %-6s | %10s | %12s | %12s |\n' "---" "---" "---" "---" "---"
for where in tmpfs disk; do
  base=$shm; [[ $where == disk ]] && base=$tmp
  : >"$tmp/tar.u"; : >"$tmp/applier.u"; : >"$tmp/import.u"
  for i in $(seq "$unpack_runs"); do
    d=$base/tar-$i; mkdir -p "$d"; sync
    s=$(now); tar -xzf "$tmp/layer.tar.gz" -C "$d" --numeric-owner; e=$(now); echo "$e - $s" | bc >>"$tmp/tar.u"; rm -rf "$d"
    d=$base/applier-$i; mkdir -p "$d"; sync
    # the harness times LayerApplier.Apply itself (dotnet run's start-up is not the applier's cost)
    dotnet run bench/layer-apply.cs -c Release -- "$tmp/layer.tar.gz" "$d" 2>/dev/null >>"$tmp/applier.u"; rm -rf "$d"
    sync
    start_berthd "$base/berth-import-$i"
    s=$(now); B import "$tmp/layer.tar.gz" bench/usr:1 >/dev/null; e=$(now); echo "$e - $s" | bc >>"$tmp/import.u"
    stop_berthd; rm -rf "$base/berth-import-$i"
  done
  mt=$(median <"$tmp/tar.u")
  for w in tar applier import; do
    m=$(median <"$tmp/$w.u")
    case $w in tar) label="tar -xzf (GNU tar + gzip)" ;; applier) label="Berth LayerApplier (layer-apply.cs)" ;; import) label="berth import (ingest + unpack)" ;; esac
    printf '| %-34s | %-6s | %10.2f | %12.0f | %11.2fx |\n' "$label" "$where" "$m" "$(echo "$usize / 1000000 / $m" | bc -l)" "$(echo "$m / $mt" | bc -l)"
  done
done
