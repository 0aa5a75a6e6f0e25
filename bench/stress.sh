#!/usr/bin/env bash
# The no-hang proof at full size: creates, starts, waits for and deletes N real containers
# (default 2,000) from a multi-threaded .NET process whose other threads allocate as fast as
# they can, and fails on the first container that does not finish in time. CI runs the same
# test with 200. Usage: sudo bench/stress.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-2000}
[[ -f artifacts/native/libberthexec.so ]] || ./build.sh --all
dotnet build tests/Berth.Runtime.Tests -c Release --nologo -v quiet -clp:ErrorsOnly
BERTH_STRESS_COUNT=$count dotnet test tests/Berth.Runtime.Tests -c Release --no-build --nologo \
  --filter Category=Stress --logger "console;verbosity=detailed" 2>&1 | grep -E "containers,|Passed|Failed|error" 
