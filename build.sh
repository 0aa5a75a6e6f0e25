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
# that each container costs about 1 MiB of RSS and survives berthd. OpenSSL (libssl-dev) is
# linked in for syslog over TLS. -lc before it puts the libc code the monitor runs next to its
# own, ahead of OpenSSL's: a container that does not use TLS then faults in 1.1 MiB of the
# binary instead of 1.4 (clean pages, shared by all monitors). The linker's warnings about
# dlopen/getaddrinfo/gethostbyname in static programs are OpenSSL's engine loading and BIO name
# lookups, which the monitor never uses (berthd resolves names).
gcc -O2 -Wall -Wextra -Werror -static -o artifacts/bin/berth-monitor native/monitor/berth_monitor.c -lz -lc -lssl -lcrypto

dotnet publish src/Berth.Runtime.Cli -c Release --nologo -v quiet -clp:ErrorsOnly -o artifacts/publish/berth-runtime
install -m 0755 artifacts/publish/berth-runtime/berth-runtime artifacts/bin/berth-runtime
# The method order file (src/Berth.Runtime.Cli/berth-runtime.order) goes stale as the code changes:
# say so when fewer than 90% of the methods it names are still in the binary.
order=src/Berth.Runtime.Cli/berth-runtime.order
if [[ -f $order && -f artifacts/publish/berth-runtime/berth-runtime.dbg ]] && command -v nm >/dev/null; then
  listed=$(wc -l < "$order")
  present=$(nm --defined-only artifacts/publish/berth-runtime/berth-runtime.dbg | awk '{print $NF}' | sort -u | comm -12 - <(sort -u "$order") | wc -l)
  if ((listed > 0 && present * 10 < listed * 9)); then
    echo "build.sh: only $present of the $listed methods in $order are in berth-runtime: regenerate it (sudo scripts/order-file/make-order-file.sh)" >&2
  fi
fi
dotnet publish src/Berth.Daemon -c Release --nologo -v quiet -clp:ErrorsOnly -o artifacts/publish/berthd
install -m 0755 artifacts/publish/berthd/berthd artifacts/bin/berthd
dotnet publish src/Berth.Cli -c Release --nologo -v quiet -clp:ErrorsOnly -o artifacts/publish/berth
install -m 0755 artifacts/publish/berth/berth artifacts/bin/berth
if [[ "${1:-}" == "--all" ]]; then
  dotnet build Berth.slnx -c Release --nologo -v quiet -clp:ErrorsOnly
fi
