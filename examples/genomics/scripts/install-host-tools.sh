#!/bin/sh
# Install, from Debian bookworm, what the genomics example needs on the host:
# the source packages of its data (for scripts/prepare_data.sh), the tools
# for the host prototype (scripts/prototype.sh), and what images/build.sh
# uses (apt-get to download .debs, dpkg-deb, GNU tar). Run as root.
set -eu

if [ "$(id -u)" -ne 0 ]; then
    echo "install-host-tools: run as root (apt-get install)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    adapterremoval-examples bowtie-examples python-pysam-tests \
    fastqc adapterremoval bwa samtools bcftools tabix mapdamage mosdepth \
    python3 python3-pysam python3-yaml libhts-dev \
    dpkg tar gzip coreutils findutils ca-certificates >/dev/null
echo "install-host-tools: done" >&2
