#!/usr/bin/env bash
# Build benchmark: `berth build` against `docker build` (the 20.10 client's classic builder,
# DOCKER_BUILDKIT=0, against dockerd), paired in one run.
#
#   bench/build.sh [--build] [--runs N] [--files F] [--json FILE] [--markdown FILE]
#
# The project: a 10-instruction Dockerfile (FROM, ENV, WORKDIR, LABEL, COPY of a tree of F
# files (default 5,000, 1 KiB each, in 50 directories), RUN, ARG, EXPOSE, USER, CMD) on
# busybox:latest, `import`ed into each engine from one tar of Debian's /bin/busybox.
# Measured with hyperfine (-N, 1 warm-up, N runs each, alternating engines run by run):
#  1. cold: `build --no-cache` (every step runs; the base image is present);
#  2. cached: `build` again with nothing changed (every step a cache hit);
#  3. one file of the tree changed between runs (the COPY and the steps after it run).
# Both engines get their own state in one temp dir and a private network namespace; dockerd
# runs in a private mount namespace (its overlay mounts stay off the host). Cleanup (trap):
# images and containers removed, daemons stopped by PID, mounts unmounted, netns deleted,
# dockerd's cgroup parent (/buildbench-<pid>-docker) removed, temp dir removed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

runs=10 files=5000 build=0 json_out= md_out=
while (($#)); do
  case $1 in
    --build) build=1 ;;
    --runs) runs=$2; shift ;;
    --files) files=$2; shift ;;
    --json) json_out=$2; shift ;;
    --markdown) md_out=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $(id -u) == 0 ]] || { echo "build.sh: must run as root" >&2; exit 1; }
for tool in /usr/bin/docker dockerd containerd hyperfine nsenter unshare ip python3 findmnt; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool not found" >&2; exit 1; }
done
[[ -x /bin/busybox ]] || { echo "build.sh: /bin/busybox missing (apt-get install -y busybox-static)" >&2; exit 1; }
if ((build)) || [[ ! -x $repo/artifacts/bin/berthd ]]; then (cd "$repo" && ./build.sh); fi

tmp=$(mktemp -d /tmp/build-bench.XXXXXX)
netns=bbench$$
tag=buildbench-$$
berth_pid= docker_pid=
mkdir -p "$tmp/bin"
for b in berth berthd berth-monitor berth-runtime; do install -m 0755 "$repo/artifacts/bin/$b" "$tmp/bin/$b"; done
berth_origin="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown), berthd sha256 $(sha256sum "$tmp/bin/berthd" | cut -c1-12)"
B=("$tmp/bin/berth" -H "unix://$tmp/berth.sock")
D=(/usr/bin/docker -H "unix://$tmp/docker.sock")
export DOCKER_CONFIG=$tmp/docker-cli DOCKER_BUILDKIT=0

stop_pid() {
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  echo "== cleanup" >&2
  if [[ -n $berth_pid ]]; then ids=$("${B[@]}" ps -aq 2>/dev/null); [[ -n $ids ]] && "${B[@]}" rm -f $ids >/dev/null 2>&1; fi
  if [[ -n $docker_pid ]]; then ids=$("${D[@]}" ps -aq 2>/dev/null); [[ -n $ids ]] && "${D[@]}" rm -f $ids >/dev/null 2>&1; fi
  stop_pid "$berth_pid"
  stop_pid "$docker_pid"
  sleep 0.5
  findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | while read -r m; do umount -l "$m"; done
  ip netns del "$netns" 2>/dev/null
  find /sys/fs/cgroup -depth -type d -path "*/$tag-docker*" -exec rmdir {} \; 2>/dev/null
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$netns"
ip -n "$netns" link set lo up

# --- the base image and the project
mkdir -p "$tmp/rootfs/bin"
cp /bin/busybox "$tmp/rootfs/bin/busybox"
for a in sh echo true cat ls find wc mkdir; do ln -s busybox "$tmp/rootfs/bin/$a"; done
tar -C "$tmp/rootfs" --numeric-owner --owner=0 --group=0 -cf "$tmp/busybox.tar" .
project=$tmp/project
python3 - "$project" "$files" <<'EOF'
import os, sys
root, files = sys.argv[1], int(sys.argv[2])
for i in range(files):
    d = os.path.join(root, "tree", f"d{i % 50:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.txt"), "wb") as f:
        f.write((f"file {i}\n".encode() * 128)[:1024])
EOF
cat >"$project/Dockerfile" <<'EOF'
FROM busybox:latest
ENV APP=/app
WORKDIR /app
LABEL bench=build
COPY tree/ /app/tree/
RUN find /app/tree -type f | wc -l > /app/count
ARG VERSION=1
EXPOSE 8080
USER 0
CMD ["cat", "/app/count"]
EOF

# --- daemons
mkdir -p "$tmp/berth" "$tmp/docker" "$tmp/docker-cli"
echo "{}" >"$tmp/docker-cli/config.json"
"$tmp/bin/berthd" --data-root "$tmp/berth/data" --exec-root "$tmp/berth/exec" -H "unix://$tmp/berth.sock" \
  --pidfile "$tmp/berth/berthd.pid" --bridge-netns "/run/netns/$netns" >"$tmp/berthd.log" 2>&1 &
berth_pid=$!
printf '%s\n' 'mount -t tmpfs -o mode=0755 tmpfs /run' \
  "exec dockerd --data-root $tmp/docker/data --exec-root $tmp/docker/exec -H unix://$tmp/docker.sock --pidfile $tmp/docker/dockerd.pid --ip-forward=false --cgroup-parent /$tag-docker" \
  >"$tmp/docker/start.sh"
nsenter "--net=/run/netns/$netns" unshare --mount --propagation private sh "$tmp/docker/start.sh" >"$tmp/dockerd.log" 2>&1 &
docker_pid=$!
for ((i = 0; i < 300; i++)); do
  "${B[@]}" version >/dev/null 2>&1 && "${D[@]}" version >/dev/null 2>&1 && break
  kill -0 "$berth_pid" && kill -0 "$docker_pid" || { tail -20 "$tmp/berthd.log" "$tmp/dockerd.log" >&2; exit 1; }
  sleep 0.1
done
"${B[@]}" import "$tmp/busybox.tar" busybox:latest >/dev/null
"${D[@]}" import "$tmp/busybox.tar" busybox:latest >/dev/null

# Sanity: both build the project and the image reports the file count.
"${B[@]}" build -q -t bench:berth "$project" >/dev/null
"${D[@]}" build -q -t bench:docker "$project" >/dev/null
[[ $("${B[@]}" run --rm --network none bench:berth) == "$files" ]] || { echo "build.sh: berth's image is wrong" >&2; exit 1; }
[[ $("${D[@]}" run --rm --network none bench:docker) == "$files" ]] || { echo "build.sh: docker's image is wrong" >&2; exit 1; }

bench() { # bench NAME BERTH_CMD DOCKER_CMD [PREPARE]
  local name=$1 prepare=${4:-}
  local args=(-N --warmup 1 --runs "$runs" --export-json "$tmp/$name.json")
  [[ -n $prepare ]] && args+=(--prepare "$prepare")
  echo "== $name" >&2
  hyperfine "${args[@]}" -n berth "$2" -n docker "$3" >&2
}
q=(-q -t bench:x)
bench cold "${B[*]} build --no-cache ${q[*]} $project" "${D[*]} build --no-cache ${q[*]} $project"
bench cached "${B[*]} build ${q[*]} $project" "${D[*]} build ${q[*]} $project"
bench one-file-changed "${B[*]} build ${q[*]} $project" "${D[*]} build ${q[*]} $project" \
  "sh -c 'date +%s%N > $project/tree/d00/f00000.txt'"

python3 - "$tmp" "$files" "$runs" "$berth_origin" "$json_out" "$md_out" <<'EOF'
import json, statistics, sys
tmp, files, runs, origin, json_out, md_out = sys.argv[1:7]
rows = []
for name in ["cold", "cached", "one-file-changed"]:
    data = json.load(open(f"{tmp}/{name}.json"))["results"]
    med = {r["command"]: statistics.median(r["times"]) * 1000 for r in data}
    rows.append((name, med["berth"], med["docker"], med["berth"] / med["docker"]))
lines = [f"build benchmark: {files}-file COPY, 10 instructions, {runs} runs each, medians (berth {origin})",
         "| build | berth | docker (classic) | ratio |", "|---|---|---|---|"]
lines += [f"| {n} | {b:.0f} ms | {d:.0f} ms | {r:.2f}x |" for n, b, d, r in rows]
print("\n".join(lines))
if md_out: open(md_out, "w").write("\n".join(lines) + "\n")
if json_out: json.dump([dict(build=n, berth_ms=b, docker_ms=d, ratio=r) for n, b, d, r in rows], open(json_out, "w"), indent=2)
EOF
