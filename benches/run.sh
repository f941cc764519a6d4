#!/usr/bin/env bash
# seal's benchmarks against the tools one would use instead (docs/benchmarks.md).
#
#   benches/run.sh            # the full run (about 20-30 minutes on 2 cores);
#                             # writes docs/benchmarks/results.{json,md} and plots
#   benches/run.sh --quick    # a smoke run (under a minute) into target/bench-quick;
#                             # exits non-zero only if a seal measurement did not run
#
# Run as root on Debian 12: it installs the peers it lacks from Debian packages,
# makes the ordinary user `seal-bench` for the rootless measurements, and builds
# seal. As an ordinary user it measures what is installed, rootless, as that user,
# and skips (with the reason) what needs root. Any other flag goes to bench.py
# (see `benches/run.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
for arg in "$@"; do
    [[ $arg == --quick ]] && quick=true
    if [[ $arg == -h || $arg == --help ]]; then
        exec /usr/bin/python3 benches/bench.py --help
    fi
done

# Peers missing here are installed as root, else skipped (and said so).
scripts/apt-install.sh --optional busybox-static python3 crun runc podman \
    charliecloud-runtime umoci snakemake cwltool
if [[ ! -x /bin/busybox || ! -x /usr/bin/python3 ]]; then
    echo "error: /bin/busybox and /usr/bin/python3 are needed (Debian: busybox-static python3)" >&2
    exit 1
fi

if [[ $(id -u) -eq 0 ]] && ! id seal-bench >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --shell /usr/sbin/nologin seal-bench
fi

seal=${SEAL:-}
if [[ -z $seal ]]; then
    cargo build --release --quiet
    seal=target/release/seal
fi

if $quick; then
    out=target/bench-quick
else
    out=docs/benchmarks
fi
exec /usr/bin/python3 benches/bench.py --seal "$seal" --out "$out" "$@"
