#!/usr/bin/env bash
# Builds Berth: the native executor, then the NativeAOT binaries into artifacts/bin/.
# Usage: ./build.sh          native executor + published binaries
#        ./build.sh --all    also every project of the solution (tests included)
set -euo pipefail
cd "$(dirname "$0")"
native=artifacts/native
mkdir -p "$native" artifacts/bin

# The executor is linked statically into the NativeAOT binaries (libberthexec.a) and
# loaded as a shared library when the managed code runs under the JIT (tests).
cflags=(-O2 -g -fPIC -Wall -Wextra -Werror -fno-stack-protector -fno-asynchronous-unwind-tables)
gcc "${cflags[@]}" -c native/executor/berth_exec.c -o "$native/berth_exec.o"
ar rcs "$native/libberthexec.a" "$native/berth_exec.o"
gcc -shared -o "$native/libberthexec.so" "$native/berth_exec.o"

# The per-container monitor (native/monitor): a small static C program, no managed code, so
# that each container costs about 1 MiB of RSS and survives berthd.
gcc -O2 -Wall -Wextra -Werror -static -o artifacts/bin/berth-monitor native/monitor/berth_monitor.c

dotnet publish src/Berth.Runtime.Cli -c Release --nologo -v quiet -clp:ErrorsOnly -o artifacts/publish/berth-runtime
install -m 0755 artifacts/publish/berth-runtime/berth-runtime artifacts/bin/berth-runtime
dotnet publish src/Berth.Daemon -c Release --nologo -v quiet -clp:ErrorsOnly -o artifacts/publish/berthd
install -m 0755 artifacts/publish/berthd/berthd artifacts/bin/berthd
dotnet publish src/Berth.Cli -c Release --nologo -v quiet -clp:ErrorsOnly -o artifacts/publish/berth
install -m 0755 artifacts/publish/berth/berth artifacts/bin/berth
if [[ "${1:-}" == "--all" ]]; then
  dotnet build Berth.slnx -c Release --nologo -v quiet -clp:ErrorsOnly
fi
