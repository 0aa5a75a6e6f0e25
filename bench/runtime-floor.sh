#!/usr/bin/env bash
# What a container cycle cannot go below on this machine, measured beside crun's and Berth's
# cycles in one run (issue 2's target: a cycle in <= 0.5x crun's wall time).
#
#   sudo bench/runtime-floor.sh [--runs N] [--warmup W]
#
# Timed with hyperfine (-N, no shell where possible), all inside one private mount namespace in
# which /sys/fs/cgroup/unified is unmounted (crun 1.8 refuses the hybrid layout otherwise; the
# host is not touched):
#   true            /bin/true: a process start and exit, C, dynamically linked
#   empty-aot       an empty NativeAOT program (bench/empty-aot.cs): the floor of any .NET process
#   crun-version    `crun --version`, berth-runtime-version `berth-runtime --version`
#   namespaces      `unshare --fork --pid --mount --uts --ipc --net --mount-proc /bin/true`: new
#                   namespaces, a fork, /proc mounted, exec and exit — no rootfs, no cgroups
#   crun-cycle, berth-cycle   `run` + `delete --force` of busybox /bin/true, as bench/runtime-run.sh
# and the peak RSS of the simple commands and of each runtime's `run` (/usr/bin/time, 9 runs each).
# A cycle is two invocations of the runtime (run, then delete): with NativeAOT that is twice the
# empty-aot floor before any container work.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=60 warmup=5
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    *) echo "usage: runtime-floor.sh [--runs N] [--warmup W]" >&2; exit 2 ;;
  esac
done
((EUID == 0)) || { echo "runtime-floor.sh: run as root" >&2; exit 1; }
for tool in crun hyperfine unshare python3; do
  command -v "$tool" >/dev/null || { echo "runtime-floor.sh: $tool not found (apt-get install -y crun hyperfine util-linux)" >&2; exit 1; }
done
[[ -x /usr/bin/time ]] || { echo "runtime-floor.sh: /usr/bin/time not found (apt-get install -y time)" >&2; exit 1; }
berth=${BERTH_RUNTIME:-$repo/artifacts/bin/berth-runtime}
[[ -x $berth ]] || { echo "runtime-floor.sh: $berth missing: run ./build.sh" >&2; exit 1; }

tmp=$(mktemp -d /tmp/berth-floor.XXXXXX)
tag=berthfloor-$$
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for r in crun:"$(command -v crun)" berth:"$tmp/berth-runtime"; do
    [[ -d $tmp/root-${r%%:*} ]] && "${r#*:}" --root "$tmp/root-${r%%:*}" delete --force "$tag-${r%%:*}" >/dev/null 2>&1 || true
  done
  find /sys/fs/cgroup -depth -path "*$tag*" -type d 2>/dev/null | while read -r d; do rmdir "$d" 2>/dev/null || true; done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

install -m 0755 "$berth" "$tmp/berth-runtime"
echo "== building bench/empty-aot.cs (NativeAOT)" >&2
(cd "$repo" && dotnet publish bench/empty-aot.cs -o "$tmp/empty-aot" --nologo -v quiet -clp:ErrorsOnly) >&2
[[ -x $tmp/empty-aot/empty-aot ]] || { echo "runtime-floor.sh: the empty NativeAOT program did not build" >&2; exit 1; }

BERTH_RUNTIME=$tmp/berth-runtime "$repo/scripts/make-busybox-bundle.sh" "$tmp/bundle" /bin/true
python3 - "$tmp/bundle/config.json" "/$tag" <<'PY'
import json, sys
path, cg = sys.argv[1:]
c = json.load(open(path))
c["ociVersion"] = "1.0.2-dev"   # crun 1.8.1 refuses 1.2.0
c["linux"]["cgroupsPath"] = cg
json.dump(c, open(path, "w"), indent="\t")
PY
mkdir -p "$tmp/root-crun" "$tmp/root-berth"

cat >"$tmp/inner.sh" <<'EOF'
set -euo pipefail
if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
crun=$(command -v crun)
cycle() { echo "$1 --root $TMP/root-$2 run --bundle $TMP/bundle $TAG-$2 >/dev/null && $1 --root $TMP/root-$2 delete --force $TAG-$2"; }
for r in "$crun":crun "$TMP/berth-runtime":berth; do  # sanity: each runtime runs the bundle
  eval "$(cycle "${r%%:*}" "${r#*:}")" || { echo "runtime-floor.sh: ${r#*:} cannot run the bundle" >&2; exit 1; }
done
hyperfine --style basic -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/simple.json" \
  -n true /bin/true \
  -n empty-aot "$TMP/empty-aot/empty-aot" \
  -n crun-version "$crun --version" \
  -n berth-runtime-version "$TMP/berth-runtime --version" \
  -n namespaces "unshare --fork --pid --mount --uts --ipc --net --mount-proc /bin/true" >&2
hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/cycles.json" \
  -n crun-cycle "$(cycle "$crun" crun)" \
  -n berth-cycle "$(cycle "$TMP/berth-runtime" berth)" \
  -n crun-cycle-again "$(cycle "$crun" crun)" >&2
# Peak RSS (/usr/bin/time's maximum resident set size, 9 runs each): what a process costs in memory
# before it does anything, beside each runtime's `run` of the bundle.
rss() {  # rss NAME COMMAND...
  local name=$1; shift
  for i in $(seq 9); do /usr/bin/time -f '%M' -a -o "$TMP/rss-$name" "$@" >/dev/null 2>&1 || true; done
}
rss true /bin/true
rss empty-aot "$TMP/empty-aot/empty-aot"
rss crun-version "$crun" --version
rss berth-runtime-version "$TMP/berth-runtime" --version
for r in "$crun":crun "$TMP/berth-runtime":berth; do
  for i in $(seq 9); do
    /usr/bin/time -f '%M' -a -o "$TMP/rss-${r#*:}-run" "${r%%:*}" --root "$TMP/root-${r#*:}" run --bundle "$TMP/bundle" "$TAG-${r#*:}" >/dev/null
  done
done
EOF
TMP=$tmp TAG=$tag RUNS=$runs WARMUP=$warmup unshare --mount --propagation private bash "$tmp/inner.sh"

python3 - "$tmp" "$tmp/simple.json" "$tmp/cycles.json" <<'PY'
import json, os, statistics, sys
tmp = sys.argv[1]
rows = {}
for path in sys.argv[2:]:
    for r in json.load(open(path))["results"]:
        rows[r["command"]] = (statistics.median(r["times"]) * 1000, (r["user"] + r["system"]) * 1000)
# hyperfine without -N (the cycles) runs through a shell: take its startup off, as runtime-run.sh's
# figures include it the same way for every runtime; here only the ratios matter.
crun = statistics.median([rows["crun-cycle"][0], rows["crun-cycle-again"][0]])
print("| what | median wall (ms) | CPU user+sys (ms, mean) | ÷ crun cycle |")
print("|---|---:|---:|---:|")
for name, (wall, cpu) in rows.items():
    print(f"| {name} | {wall:.2f} | {cpu:.2f} | {wall / crun:.2f} |")
floor = 2 * rows["empty-aot"][0] + rows["namespaces"][0] - rows["true"][0]
print()
print(f"Target (0.5x crun cycle): {crun / 2:.2f} ms. Two empty NativeAOT starts plus the namespace work alone"
      f" (2 x empty-aot + namespaces - true): {floor:.2f} ms = {floor / crun:.2f}x crun, before any rootfs,"
      f" /dev, masked path, pivot_root, cgroup or state work.")
ns = rows["namespaces"][0] - rows["true"][0]
for name, version in (("crun-cycle", "crun-version"), ("berth-cycle", "berth-runtime-version")):
    cycle = crun if name == "crun-cycle" else rows[name][0]
    print(f"{name}: {cycle:.2f} ms = 2 x `--version` ({2 * rows[version][0]:.2f}) + namespaces ({ns:.2f})"
          f" + {cycle - 2 * rows[version][0] - ns:.2f} ms of everything else (rootfs, mounts, cgroups, state, config).")
print()
print("| what | median peak RSS (MiB) |")
print("|---|---:|")
for name in ("true", "empty-aot", "crun-version", "berth-runtime-version", "crun-run", "berth-run"):
    kib = [int(line) for line in open(os.path.join(tmp, f"rss-{name}")) if line.strip().isdigit()]
    print(f"| {name} | {statistics.median(kib) / 1024:.1f} |")
PY
