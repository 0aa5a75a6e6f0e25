#!/usr/bin/env bash
# Sets Berth up on a fresh Debian machine and runs a container that shows its isolation.
# Needs root (containers) and the .NET 10 SDK. Usage: sudo ./quickstart.sh
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v busybox >/dev/null || ! command -v gcc >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static gcc python3 >/dev/null
fi
./build.sh
bundle=$(mktemp -d /tmp/berth-quickstart-XXXXXX)
trap 'artifacts/bin/berth-runtime delete --force quickstart 2>/dev/null || true; rm -rf "$bundle"' EXIT
scripts/make-busybox-bundle.sh "$bundle" sh -c '
  echo "inside:  my pid is $$, my hostname is $(hostname)"
  echo "inside:  the processes I can see:"; ps
  echo "inside:  my root is a busybox rootfs:"; ls /'
echo "host:    running berth-runtime run quickstart (bundle $bundle)"
(cd "$bundle" && "$OLDPWD/artifacts/bin/berth-runtime" run quickstart)
echo "host:    the container exited with $?; the host's hostname is $(hostname)"
