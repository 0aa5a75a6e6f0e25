#!/usr/bin/env bash
# Regenerates src/Berth.Runtime.Cli/berth-runtime.order: the managed methods that berth-runtime's
# common commands run, which the NativeAOT compiler places first and together
# (IlcOrderFile, --method-layout:explicit).
#
#   sudo scripts/order-file/make-order-file.sh [--out FILE]     (~15 minutes)
#
# Why: the kernel maps a file-backed page fault's whole 64 KiB neighbourhood (fault-around), so a
# short-lived process's resident set is set by how many 64 KiB windows of its binary it touches,
# not by how much code it runs. Left to the compiler's default order, a `run` touches ~180 KB of
# managed code spread over ~45 windows of the 3 MB code section; packed together they fit in a
# few (docs/benchmarks.md, "Peak RSS and the method order").
#
# How: the published binary is run under scripts/order-file/stepcov.c, which single-steps its
# main thread and records every 16-byte block of code executed, for: --version, run, delete of a
# missing container, create, start, state, exec, kill, delete. The blocks are mapped to functions
# with the symbols of berth-runtime.dbg; the managed ones are written, those that every command
# runs first, then by how many commands run them, then in the compiler's own order.
#
# A stale order file is harmless: names it lists that no longer exist are ignored and methods it
# does not list follow in the default order; only the binary's layout (RSS, page faults) suffers.
# Regenerate it after large changes to the runtime's command paths.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$repo/src/Berth.Runtime.Cli/berth-runtime.order
while (($#)); do
  case $1 in
    --out) out=$2; shift 2 ;;
    *) echo "usage: make-order-file.sh [--out FILE]" >&2; exit 2 ;;
  esac
done
((EUID == 0)) || { echo "make-order-file.sh: run as root (it runs containers)" >&2; exit 1; }
for tool in gcc nm readelf python3; do
  command -v "$tool" >/dev/null || { echo "make-order-file.sh: $tool not found" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/berth-order.XXXXXX)
tag=berthorder-$$
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -x $tmp/berth-runtime ]] && for id in "$tag-run" "$tag-long"; do
    "$tmp/berth-runtime" --root "$tmp/root" delete --force "$id" >/dev/null 2>&1 || true
  done
  find /sys/fs/cgroup -depth -path "*$tag*" -type d 2>/dev/null | while read -r d; do rmdir "$d" 2>/dev/null || true; done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fresh publish without any order file, so that the trace does not depend on the last one.
echo "== publishing berth-runtime (no order file)" >&2
(cd "$repo" && dotnet publish src/Berth.Runtime.Cli -c Release --nologo -v quiet -clp:ErrorsOnly \
  -o "$tmp/publish" -p:IlcOrderFile= ) >&2
cp "$tmp/publish/berth-runtime" "$tmp/berth-runtime"
gcc -O2 -Wall -Wextra -Werror -o "$tmp/stepcov" "$repo/scripts/order-file/stepcov.c"

read -r lo size < <(readelf -SW "$tmp/berth-runtime" | awk '$2 == "__managedcode" { print $4, $6 }')
[[ -n ${size:-} ]] || { echo "make-order-file.sh: no __managedcode section in berth-runtime" >&2; exit 1; }
hi=$(printf '%x' $((0x$lo + 0x$size)))
BERTH_RUNTIME=$tmp/berth-runtime "$repo/scripts/make-busybox-bundle.sh" "$tmp/bundle" /bin/true >/dev/null
BERTH_RUNTIME=$tmp/berth-runtime "$repo/scripts/make-busybox-bundle.sh" "$tmp/bundle-long" /bin/sleep 600 >/dev/null
for b in bundle bundle-long; do
  python3 - "$tmp/$b/config.json" "/$tag/$b" <<'PY'
import json, sys
path, cg = sys.argv[1:]
c = json.load(open(path))
c["linux"]["cgroupsPath"] = cg
json.dump(c, open(path, "w"), indent="\t")
PY
done
mkdir -p "$tmp/root" "$tmp/cov"

trace() {  # trace NAME ARGS...: one command's executed blocks into $tmp/cov/NAME
  local name=$1; shift
  echo "== tracing berth-runtime $*" >&2
  "$tmp/stepcov" "$lo" "$hi" "$tmp/cov/$name" -- "$tmp/berth-runtime" "$@" >/dev/null
}
rt=(--root "$tmp/root")
trace version --version
trace run "${rt[@]}" run --bundle "$tmp/bundle" "$tag-run"
trace delete-missing "${rt[@]}" delete --force "$tag-run" || true   # "does not exist" is the point
trace create "${rt[@]}" create --bundle "$tmp/bundle-long" "$tag-long"
trace start "${rt[@]}" start "$tag-long"
trace state "${rt[@]}" state "$tag-long"
trace exec "${rt[@]}" exec "$tag-long" /bin/true
trace kill "${rt[@]}" kill "$tag-long" KILL
for _ in $(seq 50); do
  "$tmp/berth-runtime" "${rt[@]}" state "$tag-long" | grep -q '"stopped"' && break
  sleep 0.1
done
trace delete "${rt[@]}" delete "$tag-long"

nm -n -S --defined-only "$tmp/publish/berth-runtime.dbg" > "$tmp/symbols"
python3 - "$tmp/symbols" "$lo" "$hi" "$out" "$tmp"/cov/* <<'PY'
import bisect, sys
symbols_path, lo, hi, out, traces = sys.argv[1], int(sys.argv[2], 16), int(sys.argv[3], 16), sys.argv[4], sys.argv[5:]
functions = []  # (start, size, name) of the code symbols in the managed code section
for line in open(symbols_path):
    parts = line.split()
    if len(parts) == 4 and parts[2] in "tT":
        start = int(parts[0], 16)
        if lo <= start < hi:
            functions.append((start, int(parts[1], 16), parts[3]))
functions.sort()
starts = [f[0] for f in functions]
runs = {}  # function index -> number of traced commands that ran it
for path in traces:
    hit = set()
    for line in open(path):
        address = int(line, 16)
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < functions[i][0] + max(functions[i][1], 16):
            hit.add(i)
    for i in hit:
        runs[i] = runs.get(i, 0) + 1
order = sorted(runs, key=lambda i: (-runs[i], i))
with open(out, "w") as f:
    for i in order:
        f.write(functions[i][2] + "\n")
size = sum(functions[i][1] for i in order)
print(f"make-order-file.sh: {len(order)} methods, {size // 1024} KiB of code, from {len(traces)} commands -> {out}", file=sys.stderr)
PY
