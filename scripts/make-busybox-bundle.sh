#!/usr/bin/env bash
# Makes an OCI bundle whose rootfs is Debian's busybox-static: make-busybox-bundle.sh DIR [ARGS...]
# config.json is `berth-runtime spec` with terminal off and the given args (default: sh).
set -euo pipefail
dir=$1; shift
runtime=${BERTH_RUNTIME:-$(dirname "$0")/../artifacts/bin/berth-runtime}
busybox=$(command -v busybox || echo /bin/busybox)
[[ -x $busybox ]] || { echo "busybox not found: apt-get install busybox-static" >&2; exit 1; }
mkdir -p "$dir/rootfs"/{bin,dev,proc,sys,tmp,etc,root}
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in $("$busybox" --list); do [[ $applet == busybox ]] || ln -sf busybox "$dir/rootfs/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/rootfs/etc/passwd"
echo 'root:x:0:' > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
"$runtime" spec --bundle "$dir"
[[ $# -gt 0 ]] || set -- sh
args_json=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@")
python3 - "$dir/config.json" "$args_json" <<'PY'
import json, sys
path, args = sys.argv[1], json.loads(sys.argv[2])
config = json.load(open(path))
config["process"]["terminal"] = False
config["hostname"] = "berth"
config["process"]["args"] = args
json.dump(config, open(path, "w"), indent="\t")
PY
