#!/usr/bin/env bash
# containerd's runc shim (io.containerd.runc.v2) driving berth-runtime through the runc
# options' BinaryName (`ctr run --runc-binary` sets exactly that field). Starts its own
# containerd with all state in a temp dir; removes everything on exit.
# Usage (root): tests/compat/containerd-runtime.sh   (BERTH_RUNTIME=…; COMPAT_RUNTIME=/usr/sbin/runc to compare)
set -uo pipefail
source "$(dirname "$0")/lib.sh"
require containerd ctr script python3
BIN=${COMPAT_RUNTIME:-$BERTH_RUNTIME}
NS=berthcompat

T=$(mktemp -d /tmp/berth-compat-containerd.XXXXXX)
remember_paths /run/containerd
remember_cgroup_parents "$NS"
cleanup() {
  local rc=$? c
  if [[ -S $T/containerd.sock ]]; then
    for c in $(c task ls -q 2>/dev/null); do c task kill -s KILL "$c" >/dev/null 2>&1; done
    sleep 0.3
    for c in $(c containers ls -q 2>/dev/null); do c task rm -f "$c" >/dev/null 2>&1; c containers rm "$c" >/dev/null 2>&1; done
  fi
  stop_pid "$(cat "$T/containerd.pid" 2>/dev/null)" 10
  host_cleanup "$T"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
c() { ctr --address "$T/containerd.sock" -n "$NS" "$@"; }

cat >"$T/config.toml" <<EOF
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/containerd.sock"
[ttrpc]
  address = "$T/containerd.sock.ttrpc"
EOF
containerd --config "$T/config.toml" >"$T/containerd.log" 2>&1 &
echo $! >"$T/containerd.pid"
for ((i = 0; i < 100; i++)); do c version >/dev/null 2>&1 && break; sleep 0.1; done
c version >/dev/null 2>&1 || { fail "containerd starts" "$(tail -20 "$T/containerd.log")"; summary; exit 1; }

# An OCI image archive of the busybox rootfs, imported into containerd (overlayfs snapshots).
make_rootfs "$T/bundle"
tar -C "$T/bundle/rootfs" -cf "$T/layer.tar" .
python3 - "$T" <<'PY'
import hashlib, json, os, sys, tarfile
t = sys.argv[1]
def blob(data, out):
    d = hashlib.sha256(data).hexdigest()
    out.append((f"blobs/sha256/{d}", data)); return {"digest": f"sha256:{d}", "size": len(data)}
files = []
layer = open(f"{t}/layer.tar", "rb").read()
lay = blob(layer, files)
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                     "rootfs": {"type": "layers", "diff_ids": [lay["digest"]]}}).encode()
cfg = blob(config, files)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **lay}]}).encode()
man = blob(manifest, files)
index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **man,
         "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/busybox:local"}}]}
files += [("index.json", json.dumps(index).encode()), ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')]
with tarfile.open(f"{t}/image.tar", "w") as tar:
    for name, data in files:
        info = tarfile.TarInfo(name); info.size = len(data)
        import io; tar.addfile(info, io.BytesIO(data))
PY
c images import --no-unpack=false "$T/image.tar" >/dev/null 2>&1 || c images import "$T/image.tar" >/dev/null
IMG=docker.io/library/busybox:local
R=(--runtime io.containerd.runc.v2 --runc-binary "$BIN" --runc-root "$T/runc-root" --fifo-dir "$T/fifo")
run() { c run "${R[@]}" "$@"; }

echo "== containerd $(containerd --version | awk '{print $3}'), runc shim v2, BinaryName=$BIN"

out=$(run --rm "$IMG" t1 echo hi 2>&1); rc=$?
expect "run --rm echo hi" "hi rc=0" "$out rc=$rc"

out=$(run --rm "$IMG" t2 sh -c 'exit 7' 2>&1); rc=$?
expect "run: the container's exit code (7)" 7 "$rc" "$out"

out=$(run --rm "$IMG" t3 sh -c 'echo $$; ps -o comm= >/tmp/ps; sort /tmp/ps | tr "\n" " "' 2>&1)
expect "run: PID 1, ps sees only its own processes" $'1\nps sh ' "$out"

out=$(run --rm --rootfs "$T/bundle/rootfs" t4 /bin/echo from-rootfs 2>&1)
expect "run --rootfs (no image, no snapshot)" from-rootfs "$out"

# A failing create: the runtime's error (from --log <bundle>/log.json) reaches the client.
out=$(run --rm "$IMG" t5 /nosuch 2>&1); rc=$?
expect_match "run a missing command: the runtime's error reaches ctr" 'OCI runtime create failed: .*/nosuch.*(no such file|No such file)' "$out"
c containers rm t5 >/dev/null 2>&1
expect "a failed create leaves no runtime state" "" "$(ls -A "$T/runc-root/$NS" 2>/dev/null)"

out=$(script -qec "ctr --address $T/containerd.sock -n $NS run --rm -t ${R[*]} $IMG t6 sh -c 'tty; stty size'" /dev/null 2>&1)
expect_match "run -t: a pty inside" '/dev/pts/[0-9]+' "$out"

out=$(printf 'hello\n' | run --rm "$IMG" t7 sh -c 'read l; echo "got $l"' 2>&1)
expect "stdin reaches the container" "got hello" "$out"

# ctr sets no HOME: the runtime takes the user's from the container's /etc/passwd, as runc does.
out=$(run --rm "$IMG" t10 sh -c 'echo "home=$HOME"' 2>&1)
expect "no HOME in the spec: root's home from /etc/passwd" "home=/root" "$out"

# Detached: task ls, SIGTERM to the init (its trap runs), the exit status, removal.
out=$(run -d --memory-limit 67108864 "$IMG" t8 sh -c 'trap "exit 3" TERM; while :; do sleep 0.1; done' 2>&1)
expect "run -d" "" "$out"
sleep 0.3
expect "task ls: RUNNING" RUNNING "$(c task ls | awk '$1 == "t8" { print $3 }')"
expect "--memory-limit: limit on the host ($NS/t8)" 67108864 "$(cat /sys/fs/cgroup/memory/$NS/t8/memory.limit_in_bytes 2>&1)"
out=$(c task ps t8 2>&1)
if unsupported "$out"; then skip "task ps (runc ps)" ps; else expect_match "task ps (runc ps)" '[0-9]+' "$out"; fi
c task kill -s TERM t8
for ((i = 0; i < 50; i++)); do [[ $(c task ls | awk '$1 == "t8" { print $3 }') == STOPPED ]] && break; sleep 0.1; done
expect "kill -s TERM: task STOPPED" STOPPED "$(c task ls | awk '$1 == "t8" { print $3 }')"
out=$(c task rm t8 2>&1)
expect_match "task rm: exit status 3" 'exit code 3' "$out"
c containers rm t8 >/dev/null 2>&1
expect "the container's cgroup is removed" gone "$([[ -e /sys/fs/cgroup/memory/$NS/t8 ]] && echo present || echo gone)"

# kill --all (runc kill --all <id> 9) with a child process in the container.
run -d "$IMG" t9 sh -c 'sleep 1000 & wait' >/dev/null 2>&1
sleep 0.3
out=$(c task kill --all -s KILL t9 2>&1)
for ((i = 0; i < 50; i++)); do [[ $(c task ls | awk '$1 == "t9" { print $3 }') == STOPPED ]] && break; sleep 0.1; done
expect "kill --all -s KILL: task STOPPED" STOPPED "$(c task ls | awk '$1 == "t9" { print $3 }')" "$out"
out=$(c task rm t9 2>&1)
expect_match "task rm: exit status 137" 'exit code 137' "$out"
c containers rm t9 >/dev/null 2>&1

# execve refuses it once started: runc's message on the container's stderr, exit 1.
printf '\177ELF\001\002\003' >"$T/badelf"; chmod 755 "$T/badelf"
out=$(run --rm --mount "type=bind,src=$T/badelf,dst=/badelf,options=rbind:ro" "$IMG" t12 /badelf 2>&1); rc=$?
expect "run a binary execve refuses: runc's message, exit 1" "exec /badelf: exec format error rc=1" "$out rc=$rc"

# exec as a user without a passwd entry: HOME=/, and the shim's stdout pipe is the user's.
run -d "$IMG" t11 sleep 1000 >/dev/null 2>&1
sleep 0.3
out=$(c task exec --exec-id e1 --user 1000 t11 sh -c 'echo to-stdout > /dev/stdout; echo "home=$HOME"' 2>&1)
expect "task exec --user 1000: /dev/stdout opens, HOME=/" $'to-stdout\nhome=/' "$out"
c task kill -s KILL t11 >/dev/null 2>&1
for ((i = 0; i < 50; i++)); do [[ $(c task ls | awk '$1 == "t11" { print $3 }') == STOPPED ]] && break; sleep 0.1; done
c task rm t11 >/dev/null 2>&1; c containers rm t11 >/dev/null 2>&1

expect "no runtime state left (--runc-root)" "" "$(ls -A "$T/runc-root/$NS" 2>/dev/null)"
expect "no container cgroups left" "" "$(find /sys/fs/cgroup/*/$NS -mindepth 1 -type d 2>/dev/null)"
expect "no rootfs mounts left" "" "$(awk -v d="$T/state" 'index($5, d) == 1' /proc/self/mountinfo)"

summary
((failed == 0))
