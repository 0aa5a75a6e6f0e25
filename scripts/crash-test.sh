#!/usr/bin/env bash
# Crash test (issue 7): kill -9 of berthd during N concurrent `berth run`s, then restart it.
#
#   sudo scripts/crash-test.sh [--rounds R] [--runs N] [--kill-after-ms MS] [--seed S] [--keep]
#
#   --rounds R         rounds, each with a fresh berthd, data root and netns (default 3)
#   --runs N           concurrent `berth run -d` per round (default 100)
#   --kill-after-ms MS kill -9 berthd MS ms after the burst starts, randomised to [MS/2, 3MS/2]
#                      (default: once K runs have been answered, K drawn per round in [0, 3N/4];
#                      K = 0 means at a random instant of the first 1.5 s)
#   --seed S           seed of the random choices (sleeps, exit codes, kill instants); printed.
#                      Timing still varies, so a seed reproduces the choices, not the interleaving
#   --keep             keep the temp dir (logs, data root, per-run client output) for debugging;
#                      processes, mounts, cgroups and the netns are cleaned up all the same
#
# Each round, in a temp dir (/tmp/berth-crash.XXXXXX) with its own copy of artifacts/bin:
#  - berthd on its own data root, exec root and socket, with --bridge-netns in a network namespace
#    made for the round (bridge, veths and NAT live there), started inside a pids cgroup of the
#    script (/sys/fs/cgroup/pids/berth-crash-<pid>) so that the monitors it forks stay countable;
#  - busybox:latest imported from Debian's /bin/busybox;
#  - N concurrent `berth run -d --name cI-xCODE-sSLEEP --label expect=CODE --label sleep=SLEEP
#    busybox sh -c 'echo start cI; sleep SLEEP; echo end cI; exit CODE'` on the default bridge
#    (one veth each); SLEEP is 0-4 s, or 3600 s for every 10th container (still running at the
#    checks); CODE is 0-125;
#  - kill -9 of berthd (by PID) while they are in flight; the clients get their answer or an error;
#  - berthd restarted on the same roots; the script waits until every short sleep has ended.
# Then it checks:
#  - berthd restarted (and answers within 60 s);
#  - every listed container is one of the burst's, and is `running` (only a 3600 s one), `exited`
#    with exactly its CODE, or `created` (only when its `run` got no answer: the kill fell between
#    create and start); `inspect` and `logs` work for it and the log holds its start/end lines
#    (a `created` one must have an empty log: its process never ran), and an exited one's
#    FinishedAt is not before its StartedAt;
#  - every acknowledged `run` (exit 0, ID printed) is listed under that ID;
#  - nothing else is left, and nothing of a container that is not running: record dirs only for
#    listed containers, bundle dirs (<exec-root>/containers/ID) only for listed ones, monitor dirs
#    (<exec-root>/m/ID[:16]), runtime state (<exec-root>/runtime/*/ID), rootfs mounts, endpoint
#    records and veths (in the round's netns every veth is berthd's) only for running ones, layers
#    (container-ID in the snapshotter's metadata) only for listed ones;
#  - no orphan process: every berth-monitor (found by its --state-dir under the exec root, not by
#    name) is the one of a running container, every running container has one, and the script's
#    pids cgroup holds only berthd and those monitors (a leaked runtime init or helper shows there);
#  - cgroups /sys/fs/cgroup/<controller>/berth/ID (v1 controllers and the unified tree) only for
#    running containers, for every ID the round produced: printed by `run`, listed, or found on disk
#    right after the kill (record, bundle, runtime state, endpoint, monitor). The /berth parent is
#    shared with other users of the host, so new /berth/* cgroups of unknown IDs are only reported;
#  - a new `run` works and exits with its code;
#  - after `berth rm -f` of everything and SIGTERM to berthd (it must exit 0 within 20 s): no mount
#    under the round's dir, no record, bundle, layer, monitor dir or runtime state, no cgroup of any
#    of the round's IDs, no veth, no monitor or other process in the pids cgroup, and the netns is
#    gone once deleted.
# Prints a summary per round and exits 1 if anything was violated: each VIOLATION line (also in
# <round>/violations with --keep) is tagged with its kind ([state], [ran-as-created], [time], [logs],
# [leftover], [orphan], [cgroup], [after-rm], [daemon], [client], [netns], [env]), counted in the summary.
# Needs root, iproute2 and busybox-static; takes about a minute per round of 100 on 2 cores.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

rounds=3 runs=100 kill_ms= keep=0 seed=
while (($#)); do
  case $1 in
    --rounds) rounds=$2; shift ;;
    --runs) runs=$2; shift ;;
    --kill-after-ms) kill_ms=$2; shift ;;
    --seed) seed=$2; shift ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "crash-test.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for v in rounds runs; do [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "crash-test.sh: --$v must be a positive integer" >&2; exit 2; }; done
[[ -z $kill_ms || $kill_ms =~ ^[0-9]+$ ]] || { echo "crash-test.sh: --kill-after-ms must be a number of ms" >&2; exit 2; }
[[ -z $seed || $seed =~ ^[0-9]+$ ]] || { echo "crash-test.sh: --seed must be a number" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "crash-test.sh: must run as root" >&2; exit 1; }
for b in berth berthd berth-monitor berth-runtime; do
  [[ -x $repo/artifacts/bin/$b ]] || { echo "crash-test.sh: $repo/artifacts/bin/$b missing (./build.sh)" >&2; exit 1; }
done
command -v ip >/dev/null || { echo "crash-test.sh: ip (iproute2) not found" >&2; exit 1; }
[[ -x /bin/busybox ]] || { echo "crash-test.sh: /bin/busybox missing (apt-get install -y busybox-static)" >&2; exit 1; }
[[ -d /sys/fs/cgroup/pids ]] || { echo "crash-test.sh: needs the cgroup v1 pids controller at /sys/fs/cgroup/pids" >&2; exit 1; }


daemon_pid= rd= sock= netns= tmp= cg=
total_violations=0
declare -a summaries=()

log() { echo "[$(date +%T)] $*" >&2; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
B() { "$BERTH" -H "unix://$sock" "$@"; }

mounts_under() { # mounts_under DIR: mount points below DIR, deepest first
  awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
monitors_under() { # monitors_under DIR: "pid id state-dir" of every process whose --state-dir is below DIR
  local p a prev id sd
  for p in /proc/[0-9]*; do
    id= sd= prev=
    { while IFS= read -r -d '' a; do
        case $prev in --id) id=$a ;; --state-dir) sd=$a ;; esac
        prev=$a
      done <"$p/cmdline"; } 2>/dev/null || true
    [[ $sd == "$1"/* ]] && echo "${p#/proc/} $id $sd"
  done
  return 0
}
rfc3339_ns() { # rfc3339_ns 2026-01-02T03:04:05.12Z -> 2026-01-02T03:04:05.120000000 (sortable as a string)
  [[ $1 =~ ^([0-9-]+T[0-9:]+)(\.([0-9]+))?Z$ ]] || { echo "$1"; return 0; }
  local f=${BASH_REMATCH[3]}000000000
  echo "${BASH_REMATCH[1]}.${f:0:9}"
}
cg_procs() { cat "$cg/cgroup.procs" 2>/dev/null || true; }
proc_desc() { # proc_desc PID: "PID (comm) cmdline"
  local c; c=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | cut -c1-200) || true
  echo "$1 ($(cat "/proc/$1/comm" 2>/dev/null || echo gone)) $c"
}
container_cgroups() { # container_cgroups ID: the cgroup dirs /sys/fs/cgroup/*/berth/ID that exist
  local d
  for d in /sys/fs/cgroup/*/berth/"$1"; do [[ -d $d ]] && echo "$d"; done
  return 0
}
cgroup_dirs() { # the child cgroups of /sys/fs/cgroup/pids/berth (not its control files)
  find /sys/fs/cgroup/pids/berth -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null || true
}
endpoint_owner() { # endpoint_owner FILE -> "ContainerId HostInterface"
  sed -n 's/.*"ContainerId": *"\([0-9a-f]*\)".*/\1/p; s/.*"HostInterface": *"\([^"]*\)".*/\1/p' "$1" 2>/dev/null | paste -sd' '
}
veths() { ip -n "$netns" -o link show type veth 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'; }

stop_pid() { # stop_pid PID SECONDS: TERM, wait, then KILL; returns 1 when KILL was needed
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  return 1
}

# Removes whatever a round left, without asking berthd: its containers' runtime state (kills their
# processes), monitors and anything else in the script's cgroup, mounts, the round's cgroups, netns.
force_clean_round() {
  local dir=$1 ns=$2 r p id sd m
  [[ -n $daemon_pid ]] && kill -KILL "$daemon_pid" 2>/dev/null; daemon_pid=
  for r in "$dir"/exec/runtime/*/; do
    [[ -d $r ]] || continue
    for id in "$r"*/; do
      [[ -d $id ]] && "$tmp/bin/berth-runtime" --root "${r%/}" delete --force "$(basename "$id")" >/dev/null 2>&1
    done
  done
  while read -r p id sd; do kill -KILL "$p" 2>/dev/null; done < <(monitors_under "$dir")
  for p in $(cg_procs); do kill -KILL "$p" 2>/dev/null; done
  sleep 0.3
  while read -r m; do umount -l "$m" 2>/dev/null; done < <(mounts_under "$dir")
  ls "$dir/data/containers" "$dir/exec/containers" 2>/dev/null | grep -E '^[0-9a-f]{64}$' >>"$dir/ids"
  if [[ -f $dir/ids ]]; then
    while read -r id; do
      for p in $(container_cgroups "$id"); do
        for q in $(cat "$p/cgroup.procs" 2>/dev/null); do kill -KILL "$q" 2>/dev/null; done
      done
      sleep 0.05
      for p in $(container_cgroups "$id"); do rmdir "$p" 2>/dev/null; done
    done < <(sort -u "$dir/ids")
  fi
  [[ -n $ns ]] && ip netns del "$ns" 2>/dev/null
  return 0
}

cleanup() {
  local rc=$? d
  trap - EXIT INT TERM
  set +e
  for d in "$tmp"/r*/; do
    [[ -d $d ]] || continue
    force_clean_round "${d%/}" "$(cat "$d/netns" 2>/dev/null)"
  done
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$netns_prefix"); do ip netns del "$ns"; done
  [[ -d $cg ]] && { rmdir "$cg" 2>/dev/null || { sleep 1; for p in $(cg_procs); do kill -KILL "$p"; done; sleep 0.3; rmdir "$cg"; }; }
  local left; left=$(mounts_under "$tmp"; ip netns list | grep "^$netns_prefix"; [[ -d $cg ]] && echo "$cg")
  if [[ -n $left ]]; then echo "crash-test.sh: cleanup left behind:"$'\n'"$left" >&2; rc=1; fi
  if ((keep)); then echo "crash-test.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
  exit "$rc"
}

netns_ok() { [[ $(stat -f -c %T "/run/netns/$1" 2>/dev/null) == nsfs ]]; }
make_netns() { # make_netns NAME: ip netns add, checked (retried if the nsfs mount did not take)
  local i
  for i in 1 2 3; do
    ip netns add "$1" 2>/dev/null || true
    if netns_ok "$1" && ip -n "$1" link set lo up 2>/dev/null; then return 0; fi
    ip netns del "$1" 2>/dev/null || true
    sleep 0.5
  done
  return 1
}
start_daemon() { # starts berthd for the round in $rd, in the script's cgroup; waits for it to answer; sets daemon_pid, start_ms
  local i t0; t0=$(now_ms)
  rm -f "$rd/berthd.child" "$rd/berthd.rc"
  # A wrapper reaps berthd and writes its exit status (and keeps bash's "Killed" notices quiet).
  (
    sh -c "echo \$\$ > $cg/cgroup.procs && exec $tmp/bin/berthd --data-root $rd/data --exec-root $rd/exec \
      -H unix://$sock --bridge-netns /run/netns/$netns --log-level info" >>"$rd/berthd.log" 2>&1 &
    echo $! >"$rd/berthd.child"
    rc=0; wait $! || rc=$?
    echo $rc >"$rd/berthd.rc"
  ) 2>/dev/null &
  for ((i = 0; i < 100; i++)); do [[ -s $rd/berthd.child ]] && break; sleep 0.02; done
  daemon_pid=$(cat "$rd/berthd.child" 2>/dev/null || true)
  for ((i = 0; i < 600; i++)); do
    B version >/dev/null 2>&1 && { start_ms=$(($(now_ms) - t0)); return 0; }
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

seed=${seed:-$(( $(date +%s%N) % 1000000 ))}
RANDOM=$seed
tmp=$(mktemp -d /tmp/berth-crash.XXXXXX)
cg=/sys/fs/cgroup/pids/berth-crash-$$
netns_prefix=berthcrash$$r
trap cleanup EXIT
trap 'exit 130' INT TERM
# A private copy: a rebuild of artifacts/bin during the run must not swap the binaries under test.
mkdir -p "$tmp/bin"
for b in berth berthd berth-monitor berth-runtime; do install -m 0755 "$repo/artifacts/bin/$b" "$tmp/bin/$b"; done
BERTH=$tmp/bin/berth
mkdir "$cg"

# --- the image: Debian's busybox-static and a few applet links
mkdir -p "$tmp/rootfs/bin"
cp /bin/busybox "$tmp/rootfs/bin/busybox"
for a in sh echo sleep true; do ln -s busybox "$tmp/rootfs/bin/$a"; done
tar -C "$tmp/rootfs" --numeric-owner --owner=0 --group=0 -cf "$tmp/busybox.tar" .

log "seed $seed, $rounds rounds of $runs runs, temp dir $tmp, load $(cut -d' ' -f1-3 /proc/loadavg)"

for ((round = 1; round <= rounds; round++)); do
  rd=$tmp/r$round
  sock=$rd/berth.sock
  netns=$netns_prefix$round
  set -e
  mkdir -p "$rd/runs" "$rd/logs"
  echo "$netns" >"$rd/netns"
  : >"$rd/ids"
  violations=()
  violate() { violations+=("$*"); }

  make_netns "$netns" || { log "round $round: could not make a network namespace /run/netns/$netns"; exit 1; }
  if ! start_daemon; then
    log "round $round: berthd did not start$(netns_ok "$netns" || echo " (/run/netns/$netns is no longer a network namespace: unmounted by something outside this script?)")"
    tail -20 "$rd/berthd.log" >&2; exit 1
  fi
  B import "$tmp/busybox.tar" busybox:latest >/dev/null
  # Other users' cgroups under the shared /berth parent, to tell new unknown ones apart.
  cgroup_dirs | sort >"$rd/cgroups-before"

  # --- the burst
  declare -a code=() slp=() name=()
  for ((i = 0; i < runs; i++)); do
    code[i]=$((RANDOM % 126))
    if ((i % 10 == 9)); then slp[i]=3600; else slp[i]=$((RANDOM % 5)); fi
    name[i]=c$i-x${code[i]}-s${slp[i]}
  done
  # When to kill: MS ms into the burst (randomised), or by default once K runs have been answered,
  # K drawn in [0, 3N/4] (K = 0: at a random instant of the first 1.5 s, before most answers), so that
  # the kill falls inside the burst however fast this machine is.
  kill_k=0
  if [[ -n $kill_ms ]]; then
    kill_at=$((kill_ms / 2 + (kill_ms > 0 ? (RANDOM * 32768 + RANDOM) % (kill_ms + 1) : 0)))
    kill_when="after $kill_at ms"
  else
    kill_k=$((RANDOM % (runs * 3 / 4 + 1)))
    kill_at=$((100 + RANDOM % 1401))
    if ((kill_k > 0)); then kill_when="once $kill_k runs are answered"; else kill_when="after $kill_at ms"; fi
  fi
  log "round $round: $runs concurrent runs, kill -9 berthd (pid $daemon_pid) $kill_when"
  t_burst=$(now_ms)
  victim=$daemon_pid
  (
    if ((kill_k > 0)); then
      shopt -s nullglob
      for ((t = 0; t < 6000; t++)); do f=("$rd"/runs/*.rc); ((${#f[@]} >= kill_k)) && break; sleep 0.02; done
    else
      sleep "$((kill_at / 1000)).$(printf %03d $((kill_at % 1000)))"
    fi
    now_ms >"$rd/killed-at"
    kill -KILL "$victim"
  ) &
  killer=$!
  for ((i = 0; i < runs; i++)); do
    (
      t0=$(now_ms)
      "$BERTH" -H "unix://$sock" run -d --name "${name[i]}" --label "expect=${code[i]}" --label "sleep=${slp[i]}" \
        busybox sh -c "echo start c$i; sleep ${slp[i]}; echo end c$i; exit ${code[i]}" >"$rd/runs/$i.out" 2>"$rd/runs/$i.err" &
      echo $! >"$rd/runs/$i.pid"
      rc=0; wait $! || rc=$?
      echo "$rc $((t0 - t_burst)) $(($(now_ms) - t_burst))" >"$rd/runs/$i.rc"
    ) &
  done
  wait "$killer"
  for ((t = 0; t < 100; t++)); do [[ -f $rd/berthd.rc ]] && break; sleep 0.05; done
  daemon_pid=
  killed_at=$(($(cat "$rd/killed-at") - t_burst))
  # The clients get their answers or an error now; give stragglers 60 s, then kill them by PID.
  for ((t = 0; t < 600; t++)); do
    n=0; for ((i = 0; i < runs; i++)); do [[ -f $rd/runs/$i.rc ]] && n=$((n + 1)); done
    ((n == runs)) && break
    sleep 0.1
  done
  for ((i = 0; i < runs; i++)); do
    [[ -f $rd/runs/$i.rc ]] && continue
    violate "[client] client of ${name[i]} still had no answer 60 s after the kill (killed)"
    kill -KILL "$(cat "$rd/runs/$i.pid" 2>/dev/null)" 2>/dev/null || true
  done
  wait 2>/dev/null || true

  declare -A acked=() ackid=()
  n_acked=0 n_failed=0 n_before=0
  for ((i = 0; i < runs; i++)); do
    read -r rc t0 t1 <"$rd/runs/$i.rc" 2>/dev/null || { rc=x t1=0; }
    out=$(tr -d '[:space:]' <"$rd/runs/$i.out" 2>/dev/null || true)
    if [[ $rc == 0 && $out =~ ^[0-9a-f]{64}$ ]]; then
      acked[$i]=1; ackid[$i]=$out; n_acked=$((n_acked + 1)); echo "$out" >>"$rd/ids"
      ((t1 <= killed_at)) && n_before=$((n_before + 1))
    else
      n_failed=$((n_failed + 1))
    fi
  done
  # Daemon dead, nothing changes on disk but monitors ending: every ID the round produced.
  {
    ls "$rd/data/containers" "$rd/exec/containers" 2>/dev/null
    for r in "$rd"/exec/runtime/*/; do ls "$r" 2>/dev/null; done
    for f in "$rd"/data/network/endpoints/*.json; do [[ -f $f ]] && endpoint_owner "$f" | cut -d' ' -f1; done
    monitors_under "$rd" | awk '{print $2}'
  } | grep -E '^[0-9a-f]{64}$' >>"$rd/ids" || true
  n_on_disk=$(ls "$rd/data/containers" 2>/dev/null | wc -l || true)
  log "round $round: killed at $killed_at ms; $n_acked runs acknowledged ($n_before of them before the kill), $n_failed failed; $n_on_disk records on disk"

  # --- restart. From here on every check is explicit: a failing command must not end the script.
  set +e
  if ! start_daemon; then
    if netns_ok "$netns"; then
      violate "[daemon] berthd did not restart on the same roots: $(tail -5 "$rd/berthd.log" | tr '\n' ' ')"
    else
      violate "[env] /run/netns/$netns is no longer a network namespace (unmounted by something outside this script), so berthd could not restart: round void"
    fi
    log "round $round: berthd did not restart"; tail -30 "$rd/berthd.log" >&2
    force_clean_round "$rd" "$netns"
    summaries+=("round $round: kill at $killed_at ms, $n_acked/$runs acknowledged, berthd DID NOT RESTART, ${#violations[@]} violations")
    for v in "${violations[@]}"; do echo "VIOLATION round $round: $v"; done | tee "$rd/violations" >&2
    total_violations=$((total_violations + ${#violations[@]}))
    continue
  fi
  restart_ms=$start_ms
  log "round $round: berthd restarted in $restart_ms ms"

  # --- settle: every short sleep ends; containers still running must be 3600 s ones
  settle_deadline=$(($(now_ms) + 90000))
  while :; do
    short_running=$(B ps --no-trunc --format '{{.Names}}' 2>/dev/null | grep -cv -- '-s3600$' || true)
    ((short_running == 0)) && break
    (($(now_ms) > settle_deadline)) && break
    sleep 1
  done
  sleep 1

  # --- state checks
  B ps -aq --no-trunc >"$rd/listed" 2>"$rd/ps.err" || violate "[daemon] ps -a failed: $(cat "$rd/ps.err")"
  cat "$rd/listed" >>"$rd/ids"
  declare -A st=() ex=() nm=() idof=() running=() listed=() started=() finished=()
  if [[ -s $rd/listed ]]; then
    B inspect -f '{{.Id}} {{.Name}} {{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{.State.StartedAt}} {{.State.FinishedAt}}' $(cat "$rd/listed") >"$rd/inspect" 2>"$rd/inspect.err" \
      || violate "[daemon] inspect of the listed containers failed: $(head -c 500 "$rd/inspect.err")"
  else
    : >"$rd/inspect"
  fi
  while read -r id n s c r t_start t_end; do
    n=${n#/}; listed[$id]=1; st[$id]=$s; ex[$id]=$c; nm[$id]=$n; started[$id]=$t_start; finished[$id]=$t_end
    [[ $s == running ]] && running[$id]=1
    if [[ $n =~ ^c([0-9]+)-x([0-9]+)-s([0-9]+)$ ]] && [[ ${name[${BASH_REMATCH[1]}]:-} == "$n" ]]; then
      idof[${BASH_REMATCH[1]}]=$id
    else
      violate "[state] listed container $id has a name no run of this round used: $n"
    fi
  done <"$rd/inspect"
  for id in $(cat "$rd/listed"); do [[ -n ${listed[$id]:-} ]] || violate "[daemon] listed container $id does not inspect"; done
  n_running=0 n_exited=0 n_created=0 n_absent=0
  for ((i = 0; i < runs; i++)); do
    id=${idof[$i]:-}
    if [[ -z $id ]]; then
      n_absent=$((n_absent + 1))
      [[ -n ${acked[$i]:-} ]] && violate "[state] ${name[i]}: run acknowledged with ID ${ackid[$i]}, but the restarted daemon does not list it"
      continue
    fi
    [[ -n ${acked[$i]:-} && ${ackid[$i]} != "$id" ]] && violate "[state] ${name[i]}: run printed ID ${ackid[$i]}, listed under $id"
    ack=no; [[ -n ${acked[$i]:-} ]] && ack=yes
    case ${st[$id]} in
      running)
        n_running=$((n_running + 1))
        ((slp[i] == 3600)) || violate "[state] ${name[i]} ($id): still running, its ${slp[i]} s sleep ended long ago (run acknowledged: $ack)" ;;
      exited)
        n_exited=$((n_exited + 1))
        [[ ! $(rfc3339_ns "${finished[$id]}") < $(rfc3339_ns "${started[$id]}") ]] \
          || violate "[time] ${name[i]} ($id): FinishedAt ${finished[$id]} is before StartedAt ${started[$id]} (run acknowledged: $ack)"
        [[ ${ex[$id]} == "${code[i]}" ]] || violate "[state] ${name[i]} ($id): exited with ${ex[$id]}, expected ${code[i]} (run acknowledged: $ack; log: $(B logs "$id" 2>&1 | tr '\n' '|' | head -c 200))" ;;
      created)
        n_created=$((n_created + 1))
        [[ $ack == yes ]] && violate "[state] ${name[i]} ($id): created but never started, though its run was acknowledged" ;;
      *) violate "[state] ${name[i]} ($id): state ${st[$id]} (exit code ${ex[$id]}), run acknowledged: $ack" ;;
    esac
    # logs work, and hold what the container printed (kept in logs/ for --keep)
    if ! out=$(B logs "$id" 2>&1); then
      violate "[logs] ${name[i]} ($id): logs failed: $(echo "$out" | head -c 300)"
    else
      printf '%s\n' "$out" >"$rd/logs/${name[i]}"
      want=""
      case ${st[$id]} in running) want="start c$i" ;; exited) want="start c$i end c$i" ;; esac
      if [[ ${st[$id]} == created && -n $out ]]; then
        violate "[ran-as-created] ${name[i]} ($id): listed as created (never started), but its process ran: its log holds '$(echo $out | head -c 200)' (run acknowledged: $ack)"
      elif [[ $(echo $out) != "$want" ]]; then
        violate "[logs] ${name[i]} ($id, ${st[$id]}): log is '$(echo $out | head -c 200)', expected '$want'"
      fi
    fi
  done

  [[ -s $rd/listed ]] && { B inspect $(cat "$rd/listed") >"$rd/inspect.json" 2>&1 || true; }

  # --- leftovers, orphans: repeated a few times, so that an exit being processed right now settles
  check_leftovers() {
    local -n out_=$1
    out_=()
    local d id p sd f owner ifc m v
    for d in "$rd"/data/containers/*/; do
      [[ -d $d ]] || continue; id=$(basename "$d")
      [[ -n ${listed[$id]:-} ]] || out_+=("[leftover] record dir data/containers/$id remains, container not listed")
    done
    for id in "${!listed[@]}"; do [[ -f $rd/data/containers/$id/config.v2.json ]] || out_+=("[leftover] listed container $id has no record file"); done
    for d in "$rd"/exec/containers/*/; do
      [[ -d $d ]] || continue; id=$(basename "$d")
      [[ -n ${listed[$id]:-} ]] || out_+=("[leftover] bundle dir exec/containers/$id remains, container not listed")
    done
    for d in "$rd"/exec/m/*/; do
      [[ -d $d ]] || continue; id=$(basename "$d"); m=
      for v in "${!running[@]}"; do [[ $v == "$id"* ]] && m=1; done
      [[ -n $m ]] || out_+=("[leftover] monitor dir exec/m/$id remains, no running container has that ID prefix (it holds: $(ls -A "$d" 2>/dev/null | tr '\n' ' ')$([[ -f $d/exit ]] && echo "; exit file: $(cat "$d/exit")"))")
    done
    for d in "$rd"/exec/runtime/*/*/; do
      [[ -d $d ]] || continue; id=$(basename "$d")
      [[ $id == @* ]] && continue # the runtime's own store (compiled seccomp programs), no container's
      [[ -n ${running[$id]:-} ]] || out_+=("[leftover] runtime state ${d#$rd/} remains, container ${st[$id]:-not listed}")
    done
    while read -r m; do
      id=; [[ $m =~ ^$rd/exec/containers/([0-9a-f]{64})/rootfs$ ]] && id=${BASH_REMATCH[1]}
      [[ -n $id && -n ${running[$id]:-} ]] || out_+=("[leftover] mount $m remains, ${id:+container ${st[$id]:-not listed}}${id:-not a container rootfs}")
    done < <(mounts_under "$rd")
    declare -A vethowner=()
    for f in "$rd"/data/network/endpoints/*.json; do
      [[ -f $f ]] || continue
      read -r owner ifc < <(endpoint_owner "$f") || continue # gone meanwhile
      vethowner[$ifc]=$owner
      [[ -n ${running[$owner]:-} ]] || out_+=("[leftover] endpoint record $(basename "$f") (veth $ifc) remains, its container $owner is ${st[$owner]:-not listed}")
    done
    for v in $(veths); do
      owner=${vethowner[$v]:-}
      [[ -n $owner && -n ${running[$owner]:-} ]] || out_+=("[leftover] veth $v remains in the netns, ${owner:+its container $owner is ${st[$owner]:-not listed}}${owner:-no endpoint record names it}")
    done
    declare -A mon=()
    while read -r p id sd; do
      [[ -n ${running[$id]:-} && $sd == "$rd/exec/m/${id:0:16}" ]] || out_+=("[orphan] monitor process $(proc_desc "$p" | cut -c1-160)… is an orphan: container $id ${st[$id]:-not listed}")
      mon[$id]=$p
    done < <(monitors_under "$rd")
    for id in "${!running[@]}"; do [[ -n ${mon[$id]:-} ]] || out_+=("[orphan] running container $id (${nm[$id]}) has no monitor process"); done
    for p in $(cg_procs); do
      [[ $p == "$daemon_pid" ]] && continue
      m=; for v in "${mon[@]}"; do [[ $v == "$p" ]] && m=1; done
      [[ -n $m ]] || out_+=("[orphan] process $(proc_desc "$p") in the script's cgroup is no running container's monitor")
    done
    for id in $(sort -u "$rd/ids"); do
      [[ -n ${running[$id]:-} ]] && continue
      for d in $(container_cgroups "$id"); do out_+=("[cgroup] cgroup $d remains, container ${st[$id]:-not listed}"); done
    done
    if [[ -f $rd/data/snapshots/metadata.json ]]; then
      for id in $(grep -o '"container-[0-9a-f]\{64\}"' "$rd/data/snapshots/metadata.json" | tr -d '"' | sed 's/^container-//'); do
        [[ -n ${listed[$id]:-} ]] || out_+=("[leftover] layer container-$id remains, container not listed")
      done
    fi
    return 0
  }
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    check_leftovers left
    ((${#left[@]} == 0)) && break
    sleep 1
  done
  violations+=("${left[@]}")
  sort -u "$rd/ids" -o "$rd/ids"
  unknown_cg=$(comm -13 "$rd/cgroups-before" <(cgroup_dirs | sort) | grep -vxFf "$rd/ids" | wc -l || true)

  # --- the daemon still works
  rc=0; B run --name probe busybox sh -c 'exit 7' >/dev/null 2>"$rd/probe.err" || rc=$?
  [[ $rc == 7 ]] || violate "[daemon] a new run after the restart exited $rc, expected 7: $(head -c 300 "$rd/probe.err")"
  B inspect -f '{{.Id}}' probe >>"$rd/ids" 2>/dev/null || true

  # --- remove everything, stop berthd, nothing may be left
  all=$(B ps -aq --no-trunc 2>/dev/null || true)
  if [[ -n $all ]]; then
    B rm -f $all >/dev/null 2>"$rd/rm.err" || violate "[daemon] rm -f of every container failed: $(head -c 500 "$rd/rm.err")"
  fi
  left_after_rm=$(B ps -aq --no-trunc 2>/dev/null | wc -l || true)
  ((left_after_rm == 0)) || violate "[daemon] $left_after_rm containers still listed after rm -f of all"
  pid=$daemon_pid; daemon_pid=
  if stop_pid "$pid" 20; then
    for ((t = 0; t < 50; t++)); do [[ -f $rd/berthd.rc ]] && break; sleep 0.1; done
    drc=$(cat "$rd/berthd.rc" 2>/dev/null || echo unknown)
    [[ $drc == 0 ]] || violate "[daemon] berthd exited $drc on SIGTERM: $(tail -3 "$rd/berthd.log" | tr '\n' ' ')"
  else
    violate "[daemon] berthd did not exit within 20 s of SIGTERM (killed)"
  fi
  sleep 0.5
  final=()
  for ((attempt = 0; attempt < 5; attempt++)); do
    final=()
    while read -r m; do final+=("[after-rm] mount $m remains after rm -f and stop"); done < <(mounts_under "$rd")
    for d in "$rd"/data/containers/* "$rd"/exec/containers/* "$rd"/exec/m/* "$rd"/exec/runtime/*/*; do
      [[ $(basename "$d") == @* ]] && continue # the runtime's compiled-seccomp store, no container's
      [[ -e $d ]] && final+=("[after-rm] ${d#$rd/} remains after rm -f and stop")
    done
    grep -q '"container-[0-9a-f]\{64\}"' "$rd/data/snapshots/metadata.json" 2>/dev/null && final+=("[after-rm] container layers remain in the snapshotter's metadata after rm -f")
    for f in "$rd"/data/network/endpoints/*.json; do [[ -f $f ]] && final+=("[after-rm] endpoint record $(basename "$f") remains after rm -f and stop"); done
    for id in $(cat "$rd/ids"); do for d in $(container_cgroups "$id"); do final+=("[after-rm] cgroup $d remains after rm -f and stop"); done; done
    for v in $(veths); do final+=("[after-rm] veth $v remains in the netns after rm -f and stop"); done
    while read -r p id sd; do final+=("[after-rm] monitor process $p (container $id) still runs after rm -f and stop"); done < <(monitors_under "$rd")
    for p in $(cg_procs); do final+=("[after-rm] process $(proc_desc "$p") remains in the script's cgroup after stop"); done
    ((${#final[@]} == 0)) && break
    sleep 1
  done
  violations+=("${final[@]}")
  ip netns del "$netns" 2>/dev/null || violate "[netns] ip netns del $netns failed"
  [[ -e /run/netns/$netns ]] && violate "[netns] netns $netns remains after ip netns del"
  force_clean_round "$rd" "" # a no-op when all went well

  for v in "${violations[@]}"; do echo "VIOLATION round $round: $v"; done | tee "$rd/violations" >&2
  total_violations=$((total_violations + ${#violations[@]}))
  s="round $round: kill at $killed_at ms ($kill_when); runs acknowledged $n_acked/$runs ($n_before before the kill, $n_failed failed);"
  s+=" restart $restart_ms ms; listed $((n_running + n_exited + n_created)): running $n_running, exited $n_exited (codes checked),"
  s+=" created $n_created, absent $n_absent; ${#violations[@]} violations"
  ((${#violations[@]} > 0)) && s+=" ($(printf '%s\n' "${violations[@]}" | sed -n 's/^\[\([a-z-]*\)\].*/\1/p' | sort | uniq -c | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1}'))"
  ((n_before == runs)) && s+=" (the kill came after every run was answered: nothing was in flight)"
  ((unknown_cg > 0)) && s+=" (note: $unknown_cg new /berth cgroups of IDs unknown to this round: other users?)"
  summaries+=("$s")
  log "$s"
  unset st ex nm idof running listed acked ackid started finished
done

echo
echo "crash-test.sh: seed $seed, $rounds rounds of $runs runs, load now $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${summaries[@]}"
if ((total_violations > 0)); then
  echo "FAILED: $total_violations violations (VIOLATION lines above)"
  exit 1
fi
echo "OK: no violation"
