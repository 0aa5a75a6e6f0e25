#!/usr/bin/env bash
# Container cycle benchmark: berth-runtime against runc and crun, paired in one run.
#
#   bench/runtime-run.sh [--build] [--runs N] [--rounds R] [--warmup W] [--rss-runs K]
#                        [--nice N] [--json FILE] [--markdown FILE]
#
# One cycle = `RUNTIME --root ROOT run --bundle B ID` (create+start+wait of busybox's
# /bin/true; a foreground `run` removes the stopped container itself, as runc does)
# followed by `RUNTIME --root ROOT delete --force ID` (the cleanup a caller runs anyway).
# Each runtime has its own --root, its own container id and its own cgroupsPath
# (/berthbench-<pid>/<runtime>).
#
# crun 1.8 refuses this host's hybrid cgroup layout, so everything (the sanity runs,
# hyperfine, the RSS runs and the cleanup) runs inside ONE private mount namespace in
# which /sys/fs/cgroup/unified is unmounted; all three runtimes are timed through that
# same wrapper. Nothing is unmounted on the host.
#
# The N runs per runtime are split into R hyperfine rounds whose command order rotates,
# so that load drift on a shared machine hits all three alike. Reported: the median
# wall time of all runs, ratios of medians, and the median peak RSS of K `run`s
# (/usr/bin/time's "Maximum resident set size": the largest single process of the
# runtime's process tree, the container's own processes included).
#
# Two more paired measurements follow, in the same namespace and rounds scheme:
#  - exec: `RUNTIME exec ID /bin/true` into a running container (busybox `sleep`) of
#    each runtime, after a sanity exec that must see a small pid and return its exit code;
#  - seccomp: the cycle above with Docker's default seccomp profile in config.json
#    (generated from Berth.Seccomp's DockerDefaultProfile by bench/docker-seccomp.cs for
#    the bundle's capabilities) against the same cycle without it, per runtime.
#
# The measurement runs at nice -10 (--nice) so that builds running beside it on a shared
# machine disturb it less; it applies to all three runtimes alike.
#
# Environment: BERTH_RUNTIME=path uses that binary (default artifacts/bin/berth-runtime,
# built with ./build.sh when missing or with --build).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

runs=120 rounds=12 warmup=3 rss_runs=9 nice=-10 build=0 json_out= md_out=
while (($#)); do
  case $1 in
    --build) build=1 ;;
    --runs) runs=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --rss-runs) rss_runs=$2; shift ;;
    --nice) nice=$2; shift ;;
    --json) json_out=$2; shift ;;
    --markdown) md_out=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "runtime-run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
((runs >= 20)) || { echo "runtime-run.sh: --runs must be at least 20" >&2; exit 2; }
((rounds >= 1 && runs % rounds == 0)) || { echo "runtime-run.sh: --runs must be a multiple of --rounds" >&2; exit 2; }

[[ $(id -u) == 0 ]] || { echo "runtime-run.sh: must run as root (it creates containers)" >&2; exit 1; }
for tool in runc crun hyperfine unshare python3 busybox; do
  command -v "$tool" >/dev/null || { echo "runtime-run.sh: $tool not found (apt-get install -y runc crun hyperfine time busybox-static)" >&2; exit 1; }
done
[[ -x /usr/bin/time ]] || { echo "runtime-run.sh: /usr/bin/time not found (apt-get install -y time)" >&2; exit 1; }

berth=${BERTH_RUNTIME:-$repo/artifacts/bin/berth-runtime}
if ((build)) || [[ ! -x $berth ]]; then
  [[ -z ${BERTH_RUNTIME:-} ]] || { echo "runtime-run.sh: BERTH_RUNTIME=$berth is not executable" >&2; exit 1; }
  (cd "$repo" && ./build.sh)
fi
runc=$(command -v runc) crun=$(command -v crun)

tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
tag=berthbench-$$
# A private copy: a rebuild of artifacts/bin during the run must not swap the binary under test.
install -m 0755 "$berth" "$tmp/berth-runtime"
berth_origin="$berth, $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$repo" && [[ -n $(git status --porcelain -- src native 2>/dev/null) ]] && echo ' + uncommitted src changes'), sha256 $(sha256sum "$berth" | cut -c1-12)"
berth=$tmp/berth-runtime
names=(berth-runtime runc crun)
declare -A bin=([berth-runtime]=$berth [runc]=$runc [crun]=$crun)

# Every container is placed at cgroupsPath /$tag/<runtime> (same depth and same v1
# operations for all three), so everything this run creates in /sys/fs/cgroup carries
# $tag; the cleanup touches nothing else (other sessions' `berth` groups stay alone).
cgroups_with_tag() { find /sys/fs/cgroup -name "*$tag*" 2>/dev/null || true; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Normally the namespace already deleted everything; this is the fallback after a failure.
  for n in "${names[@]}"; do
    for id in "$tag-$n" "$tag-$n-sanity" "$tag-$n-exec" "$tag-$n-sc"; do
      [[ -d $tmp/root-$n ]] && "${bin[$n]}" --root "$tmp/root-$n" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  # Deepest first: /sys/fs/cgroup/<controller>/$tag/<runtime>, then /sys/fs/cgroup/<controller>/$tag.
  find /sys/fs/cgroup -depth -path "*$tag*" -type d 2>/dev/null | while read -r d; do rmdir "$d" 2>/dev/null || true; done
  rm -rf "$tmp"
  local left; left=$(cgroups_with_tag)
  if [[ -n $left ]]; then echo "runtime-run.sh: cgroups left behind:"$'\n'"$left" >&2; rc=1; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One busybox rootfs; per runtime two bundles that point at it: `true` (/bin/true, timed)
# and `sanity`, whose output proves the process ran as PID 1 of a new PID namespace with
# the spec's hostname and whose exit code must come back through `run`.
BERTH_RUNTIME=$berth "$repo/scripts/make-busybox-bundle.sh" "$tmp/base" /bin/true
# Docker's default seccomp profile for the bundle's bounding capabilities.
mapfile -t caps < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["process"]["capabilities"]["bounding"]))' "$tmp/base/config.json")
(cd "$repo" && dotnet run bench/docker-seccomp.cs -- "${caps[@]}") >"$tmp/seccomp.json"
for n in "${names[@]}"; do
  for b in true sanity sleep seccomp seccompsanity; do
    mkdir -p "$tmp/$b-$n"
    cgpath=/$tag/$n
    [[ $b == sleep ]] && cgpath=/$tag/$n-exec
    python3 - "$tmp/base/config.json" "$tmp/$b-$n/config.json" "$tmp/base/rootfs" "$cgpath" "$b" "$tmp/seccomp.json" <<'PY'
import json, sys
src, dst, rootfs, cgroups_path, kind, seccomp = sys.argv[1:]
config = json.load(open(src))
# berth-runtime spec writes ociVersion 1.2.0, which crun 1.8.1 refuses ("unknown version
# specified"); 1.0.2-dev is what runc 1.1.5's own `spec` writes. Nothing else changes.
config["ociVersion"] = "1.0.2-dev"
config["root"]["path"] = rootfs
config["linux"]["cgroupsPath"] = cgroups_path
if kind == "sanity":
    config["process"]["args"] = ["sh", "-c", 'echo "pid=$$ host=$(hostname)"; exit 3']
if kind == "sleep":
    config["process"]["args"] = ["sleep", "1000000"]
if kind.startswith("seccomp"):
    config["linux"]["seccomp"] = json.load(open(seccomp))
if kind == "seccompsanity":
    config["process"]["args"] = ["sh", "-c", "grep '^Seccomp:' /proc/self/status"]
json.dump(config, open(dst, "w"), indent="\t")
PY
  done
done
for n in "${names[@]}"; do mkdir -p "$tmp/root-$n"; done

# The script that runs inside the private mount namespace (settings come in the environment).
cat >"$tmp/inner.sh" <<'EOF'
set -euo pipefail
# unshare --propagation private: this umount is invisible to the host.
if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
names=(berth-runtime runc crun)
declare -A bin=([berth-runtime]=$BERTH [runc]=$RUNC [crun]=$CRUN)
finish() { # whatever a failure left in the roots
  for n in "${names[@]}"; do
    for id in $("${bin[$n]}" --root "$TMP/root-$n" list -q 2>/dev/null || true); do
      "${bin[$n]}" --root "$TMP/root-$n" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
}
trap finish EXIT

echo "== sanity: each runtime runs the container" >&2
for n in "${names[@]}"; do
  r=${bin[$n]} root=$TMP/root-$n
  rc=0; out=$("$r" --root "$root" run --bundle "$TMP/sanity-$n" "$TAG-$n-sanity" 2>"$TMP/sanity-$n.err") || rc=$?
  "$r" --root "$root" delete --force "$TAG-$n-sanity" >/dev/null 2>&1 || true
  if [[ $out != "pid=1 host=$HOSTNAME_SPEC" || $rc != 3 ]]; then
    echo "sanity: $n printed '$out' and exited $rc (expected 'pid=1 host=$HOSTNAME_SPEC' and 3); stderr:" >&2
    cat "$TMP/sanity-$n.err" >&2; exit 1
  fi
  if [[ -s $TMP/sanity-$n.err ]]; then sed "s/^/   $n stderr: /" "$TMP/sanity-$n.err" >&2; fi
  "$r" --root "$root" run --bundle "$TMP/true-$n" "$TAG-$n" || { echo "sanity: $n run /bin/true exited $?" >&2; exit 1; }
  "$r" --root "$root" delete --force "$TAG-$n"
  echo "   $n: printed '$out', exit $rc; /bin/true exit 0" >&2
done

cycle() { # one container cycle of runtime $1, as hyperfine runs it (through sh -c)
  local r=${bin[$1]} root=$TMP/root-$1 id=$TAG-$1
  echo "$r --root $root run --bundle $TMP/true-$1 $id && $r --root $root delete --force $id"
}
echo "== wall time: $ROUNDS rounds x $PER_ROUND runs per runtime (order rotates)" >&2
for ((i = 0; i < ROUNDS; i++)); do
  args=()
  for ((k = 0; k < 3; k++)); do n=${names[(i + k) % 3]}; args+=(-n "$n" "$(cycle "$n")"); done
  hyperfine --style basic --warmup "$WARMUP" --runs "$PER_ROUND" --export-json "$TMP/round-$i.json" "${args[@]}" >&2
done

echo "== exec: sanity, then $ROUNDS rounds x $PER_ROUND execs of /bin/true per runtime into a running container" >&2
for n in "${names[@]}"; do
  r=${bin[$n]} root=$TMP/root-$n id=$TAG-$n-exec
  "$r" --root "$root" create --bundle "$TMP/sleep-$n" "$id" </dev/null >/dev/null 2>&1
  "$r" --root "$root" start "$id"
  out=$("$r" --root "$root" exec "$id" sh -c 'echo "pid=$$ ns=$(readlink /proc/self/ns/pid)"; exit 5') && rc=0 || rc=$?
  init=$("$r" --root "$root" state "$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
  if [[ ! $out =~ ^pid=([0-9]+)\ ns=(.*)$ || ${BASH_REMATCH[1]} -gt 50 || ${BASH_REMATCH[2]} != "$(readlink /proc/$init/ns/pid)" || $rc != 5 ]]; then
    echo "exec sanity: $n printed '$out' and exited $rc (expected a small pid in the container's pid namespace, exit 5)" >&2; exit 1
  fi
  echo "   $n: exec printed '$out', exit $rc" >&2
done
exec_cmd() { echo "${bin[$1]} --root $TMP/root-$1 exec $TAG-$1-exec /bin/true"; }
for ((i = 0; i < ROUNDS; i++)); do
  args=()
  for ((k = 0; k < 3; k++)); do n=${names[(i + k) % 3]}; args+=(-n "$n" "$(exec_cmd "$n")"); done
  hyperfine --style basic --warmup "$WARMUP" --runs "$PER_ROUND" --export-json "$TMP/exec-round-$i.json" "${args[@]}" >&2
done
for n in "${names[@]}"; do "${bin[$n]}" --root "$TMP/root-$n" delete --force "$TAG-$n-exec"; done

echo "== seccomp: sanity, then $ROUNDS rounds x $PER_ROUND cycles per runtime with and without Docker's default profile" >&2
for n in "${names[@]}"; do
  r=${bin[$n]} root=$TMP/root-$n
  out=$("$r" --root "$root" run --bundle "$TMP/seccompsanity-$n" "$TAG-$n-sc" 2>&1) || { echo "seccomp sanity: $n: $out" >&2; exit 1; }
  "$r" --root "$root" delete --force "$TAG-$n-sc" >/dev/null 2>&1 || true
  [[ $out =~ ^Seccomp:[[:space:]]+2$ ]] || { echo "seccomp sanity: $n printed '$out' (expected 'Seccomp: 2')" >&2; exit 1; }
  echo "   $n: $out" >&2
done
seccomp_cycle() {
  local r=${bin[$1]} root=$TMP/root-$1 id=$TAG-$1-sc
  echo "$r --root $root run --bundle $TMP/seccomp-$1 $id && $r --root $root delete --force $id"
}
for ((i = 0; i < ROUNDS; i++)); do
  args=()
  for ((k = 0; k < 3; k++)); do
    n=${names[(i + k) % 3]}
    if ((i % 2)); then args+=(-n "$n+seccomp" "$(seccomp_cycle "$n")" -n "$n" "$(cycle "$n")")
    else args+=(-n "$n" "$(cycle "$n")" -n "$n+seccomp" "$(seccomp_cycle "$n")"); fi
  done
  hyperfine --style basic --warmup "$WARMUP" --runs "$PER_ROUND" --export-json "$TMP/seccomp-round-$i.json" "${args[@]}" >&2
done

echo "== peak RSS: $RSS_RUNS runs of 'run' per runtime" >&2
for ((i = 0; i < RSS_RUNS; i++)); do
  for n in "${names[@]}"; do
    r=${bin[$n]} root=$TMP/root-$n
    /usr/bin/time -f '%M %x' -o "$TMP/rss-$n-$i" "$r" --root "$root" run --bundle "$TMP/true-$n" "$TAG-$n"
    "$r" --root "$root" delete --force "$TAG-$n"
  done
done
EOF
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
HOSTNAME_SPEC=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hostname"])' "$tmp/base/config.json") \
TMP=$tmp TAG=$tag BERTH=$berth RUNC=$runc CRUN=$crun ROUNDS=$rounds PER_ROUND=$((runs / rounds)) \
  WARMUP=$warmup RSS_RUNS=$rss_runs nice -n "$nice" unshare --mount --propagation private bash "$tmp/inner.sh"

{
  echo "nproc=$(nproc)"
  echo "kernel=$(uname -r)"
  echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "runc=$(runc --version | head -1)"
  echo "crun=$(crun --version | head -1)"
  echo "berth=$berth_origin"
  echo "hyperfine=$(hyperfine --version)"
  echo "load=$load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"
} >"$tmp/machine"

python3 - "$tmp" "$rss_runs" "$json_out" "$md_out" <<'PY'
import json, os, statistics, sys
tmp, rss_runs, json_out, md_out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
names = ["berth-runtime", "runc", "crun"]
times = {n: [] for n in names}
cpu = {n: [] for n in names}  # (runs, user+system mean) per round
def load(prefix, times, cpu):
    for f in sorted(f for f in os.listdir(tmp) if f.startswith(prefix) and f.endswith(".json")):
        for r in json.load(open(os.path.join(tmp, f)))["results"]:
            if any(c != 0 for c in r.get("exit_codes", [])):
                sys.exit(f"{r['command']}: non-zero exit codes {r['exit_codes']}")
            times.setdefault(r["command"], []).extend(r["times"])
            cpu.setdefault(r["command"], []).append((len(r["times"]), r["user"] + r["system"]))
load("round-", times, cpu)
exec_times, exec_cpu = {}, {}
load("exec-round-", exec_times, exec_cpu)
sc_times, sc_cpu = {}, {}
load("seccomp-round-", sc_times, sc_cpu)
rss = {}
for n in names:
    vals = []
    for i in range(rss_runs):
        kb, code = open(os.path.join(tmp, f"rss-{n}-{i}")).read().split()[-2:]
        if code != "0":
            sys.exit(f"{n}: run exited {code} under /usr/bin/time")
        vals.append(int(kb))
    rss[n] = vals
machine = dict(line.rstrip("\n").split("=", 1) for line in open(os.path.join(tmp, "machine")))
med = {n: statistics.median(times[n]) * 1000 for n in names}
q = {n: statistics.quantiles(times[n], n=4) for n in names}
mrss = {n: statistics.median(rss[n]) for n in names}
mcpu = {n: 1000 * sum(k * c for k, c in cpu[n]) / sum(k for k, _ in cpu[n]) for n in names}
rows = ["| runtime | runs | median wall (ms) | IQR (ms) | min (ms) | ÷ crun | ÷ runc | CPU user+sys (ms, mean) | median peak RSS (MiB) | RSS ÷ crun |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for n in names:
    rows.append(f"| {n} | {len(times[n])} | {med[n]:.1f} | {q[n][0]*1000:.1f}–{q[n][2]*1000:.1f} | {min(times[n])*1000:.1f} | "
                f"{med[n]/med['crun']:.2f} | {med[n]/med['runc']:.2f} | {mcpu[n]:.1f} | {mrss[n]/1024:.1f} | {mrss[n]/mrss['crun']:.2f} |")
wall_ok = med["berth-runtime"] <= 0.5 * med["crun"]
rss_ok = mrss["berth-runtime"] <= mrss["crun"]
mean_cpu = lambda c: 1000 * sum(k * v for k, v in c) / sum(k for k, _ in c)
emed = {n: statistics.median(exec_times[n]) * 1000 for n in names}
eq = {n: statistics.quantiles(exec_times[n], n=4) for n in names}
exec_rows = ["| runtime | execs | median wall (ms) | IQR (ms) | min (ms) | ÷ crun | ÷ runc | CPU user+sys (ms, mean) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
for n in names:
    exec_rows.append(f"| {n} | {len(exec_times[n])} | {emed[n]:.1f} | {eq[n][0]*1000:.1f}–{eq[n][2]*1000:.1f} | {min(exec_times[n])*1000:.1f} | "
                     f"{emed[n]/emed['crun']:.2f} | {emed[n]/emed['runc']:.2f} | {mean_cpu(exec_cpu[n]):.1f} |")
smed = {k: statistics.median(v) * 1000 for k, v in sc_times.items()}
sc_rows = ["| runtime | cycles each | median without (ms) | median with profile (ms) | added (ms) | CPU added (ms, mean) |",
           "|---|---:|---:|---:|---:|---:|"]
for n in names:
    sc_rows.append(f"| {n} | {len(sc_times[n + '+seccomp'])} | {smed[n]:.1f} | {smed[n + '+seccomp']:.1f} | {smed[n + '+seccomp'] - smed[n]:+.1f} | "
                   f"{mean_cpu(sc_cpu[n + '+seccomp']) - mean_cpu(sc_cpu[n]):+.1f} |")
exec_ok = emed["berth-runtime"] <= 0.5 * emed["crun"]
sc_added = smed["berth-runtime+seccomp"] - smed["berth-runtime"]
lines = [f"- machine: {machine['nproc']} CPUs ({machine['cpu']}), kernel {machine['kernel']}",
         f"- {machine['runc']}; {machine['crun']}; {machine['hyperfine']}; berth-runtime at {machine['berth']}",
         f"- load average (1/5/15 min): {machine['load']}",
         "", "Container cycle (run + delete of /bin/true):", "", *rows, "",
         f"Target wall ≤ 0.5× crun: {'met' if wall_ok else 'NOT met'} ({med['berth-runtime']/med['crun']:.2f}×). "
         f"Target peak RSS ≤ crun: {'met' if rss_ok else 'NOT met'} ({mrss['berth-runtime']/mrss['crun']:.2f}×).",
         "", "exec of /bin/true into a running container:", "", *exec_rows, "",
         f"Target exec ≤ 0.5× crun: {'met' if exec_ok else 'NOT met'} ({emed['berth-runtime']/emed['crun']:.2f}×).",
         "", "Container cycle with Docker's default seccomp profile vs without (paired in the same rounds):", "", *sc_rows, "",
         f"Target: the profile adds ≤ 1 ms to berth-runtime: {'met' if sc_added <= 1 else 'NOT met'} ({sc_added:+.1f} ms)."]
print("\n".join(lines))
if md_out:
    open(md_out, "w").write("\n".join(lines) + "\n")
if json_out:
    json.dump({"machine": machine, "wall_seconds": times, "peak_rss_kib": rss,
               "median_ms": med, "cpu_ms_mean": mcpu, "median_rss_kib": mrss,
               "exec_wall_seconds": exec_times, "exec_median_ms": emed,
               "seccomp_wall_seconds": sc_times, "seccomp_median_ms": smed}, open(json_out, "w"), indent=1)
PY
