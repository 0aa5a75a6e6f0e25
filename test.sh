#!/usr/bin/env bash
# Runs all of Berth's tests: builds everything (./build.sh), then every test project.
# Integration tests need root, busybox-static and runc (.ci/run installs them).
# Usage: ./test.sh [extra dotnet test arguments, e.g. --filter Category!=Stress]
set -uo pipefail
cd "$(dirname "$0")"
./build.sh --all || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# One test project at a time: the integration tests create real containers and registries,
# and two assemblies of them side by side on a 2-core machine only make timeouts likelier.
status=0
for project in tests/*/*.csproj; do
  dotnet test "$project" -c Release --no-build --nologo "$@" 2>&1 | tee -a "$log"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
done

# berth-runtime under the real peers (dockerd, containerd, podman), where they are installed.
for peer in docker:docker-runtime containerd:containerd-runtime podman:podman-runtime; do
  command -v "${peer%%:*}" >/dev/null || { echo "compat: ${peer%%:*} not installed, ${peer#*:}.sh not run"; continue; }
  echo "== tests/compat/${peer#*:}.sh"
  tests/compat/"${peer#*:}".sh 2>&1 | tee -a "$log" || status=1
done
# kill -9 of berthd in the middle of 100 concurrent runs, then restart: every container running,
# exited with its code, or cleanly absent, nothing leaked (issue 7's crash test).
echo "== scripts/crash-test.sh --rounds 2"
if scripts/crash-test.sh --rounds 2 >"$log.crash" 2>&1; then grep -E "^round [0-9]+:" "$log.crash"; else status=1; cat "$log.crash"; fi
rm -f "$log.crash"
# One closing line for all assemblies: "N passed, N failed, N skipped".
awk '/^(Passed|Failed)! +-/ {
       for (i = 1; i <= NF; i++) { gsub(",", "", $(i+1)); if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) }
     }
     /^[0-9]+ passed, [0-9]+ failed/ { p += $1; f += $3; if ($5 ~ /^[0-9]+$/) s += $5 }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
