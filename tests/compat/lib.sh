# Shared helpers for the compat scripts (docker-runtime.sh, containerd-runtime.sh,
# podman-runtime.sh): check counting, a busybox rootfs, and host cleanup that removes only
# what the run created. Sourced, not executed.

COMPAT_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BERTH_RUNTIME=${BERTH_RUNTIME:-$COMPAT_REPO/artifacts/bin/berth-runtime}
passed=0 failed=0 skipped=0
failures=()

# pass/fail NAME [DETAIL]
pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); printf 'FAIL  %s\n' "$1"; [[ -z ${2:-} ]] || printf '%s\n' "$2" | sed 's/^/      | /' | head -20; }
skip() { skipped=$((skipped + 1)); printf 'skip  %s (%s)\n' "$1" "$2"; }

# expect NAME WANT GOT [DETAIL]: passes when GOT equals WANT.
expect() {
  if [[ "$3" == "$2" ]]; then pass "$1"; else fail "$1" "want: $2"$'\n'"got:  $3${4:+$'\n'$4}"; fi
}

# expect_match NAME REGEX TEXT: passes when TEXT matches the extended regex (bash =~, the whole text).
expect_match() {
  if [[ $3 =~ $2 ]]; then pass "$1"; else fail "$1" "want /$2/ in:"$'\n'"$3"; fi
}

# unsupported TEXT: true when berth-runtime said the command is not implemented yet.
unsupported() { grep -q 'not supported by this version of berth-runtime' <<<"$1"; }

summary() {
  echo
  ((${#failures[@]} == 0)) || { echo "failed:"; printf '  %s\n' "${failures[@]}"; }
  local extra=""; ((skipped == 0)) || extra=", $skipped skipped (not implemented in berth-runtime yet)"
  echo "$passed passed, $failed failed$extra"
}

require() {
  [[ $(id -u) == 0 ]] || { echo "must run as root" >&2; exit 2; }
  [[ -x $BERTH_RUNTIME ]] || { echo "berth-runtime not found at $BERTH_RUNTIME: run ./build.sh (or set BERTH_RUNTIME)" >&2; exit 2; }
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y docker.io containerd podman runc busybox-static" >&2; exit 2; }
  done
}

# A rootfs of Debian's busybox-static (PATH is not needed: images set ENV PATH=/bin).
make_rootfs() { "$COMPAT_REPO/scripts/make-busybox-bundle.sh" "$1" >/dev/null; }

# --- host state: remember what exists now, remove afterwards only what the run created ---
_created_paths=() _cgroup_parents=()
# remember_paths PATH...: each path that does not exist yet is removed (rm -rf) at cleanup.
remember_paths() { local p; for p in "$@"; do [[ -e $p ]] || _created_paths+=("$p"); done; }
# remember_cgroup_parents NAME...: /sys/fs/cgroup/*/NAME (and /sys/fs/cgroup/NAME on v2) that
# do not exist yet are removed (empty groups, depth first) at cleanup.
remember_cgroup_parents() {
  local name dir
  for name in "$@"; do
    for dir in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
      [[ -e $dir/cgroup.procs && ! -e $dir$name ]] && _cgroup_parents+=("$dir$name")
    done
  done
}

# Processes whose command line mentions DIR (daemons, shims, conmon started for this run).
pids_mentioning() {
  local dir=$1 pid cmd
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [[ $pid == $$ || $pid == $BASHPID ]] && continue
    cmd=$( { tr "\0" " " </proc/"$pid"/cmdline; } 2>/dev/null) || continue
    [[ $cmd == *"$dir"* ]] && echo "$pid"
  done
}

# stop_pid PID [SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local pid=$1 wait=${2:-10} i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < wait * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null; sleep 0.2
}

# host_cleanup DIR: kills leftover processes mentioning DIR, unmounts everything under DIR,
# removes what remember_* recorded, then DIR itself.
host_cleanup() {
  local dir=$1 pid mnt path
  for pid in $(pids_mentioning "$dir"); do kill -KILL "$pid" 2>/dev/null; done
  sleep 0.2
  # Mount points (mountinfo field 5), deepest first; a netns bind can hold a mount too.
  for mnt in $(awk -v d="$dir" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
  done
  for path in "${_cgroup_parents[@]}"; do
    [[ -d $path ]] && find "$path" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  for path in "${_created_paths[@]}"; do rm -rf "$path"; done
  rm -rf "$dir"
}

# leftovers DIR: mounts, processes or cgroups this run left behind (printed; empty when clean).
leftovers() {
  local dir=$1 path
  awk -v d="$dir" 'index($5, d) == 1 { print "mount " $5 }' /proc/self/mountinfo
  for pid in $(pids_mentioning "$dir"); do echo "process $pid: $(tr '\0' ' ' </proc/"$pid"/cmdline)"; done
  for path in "${_cgroup_parents[@]}"; do
    [[ -d $path ]] && find "$path" -mindepth 1 -type d -printf 'cgroup %p\n'
  done
}
