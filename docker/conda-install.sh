#!/bin/sh
# The install steps of docker/conda.Dockerfile, strictly from the cell's conda lock: the
# rendered explicit list (exact URLs and hashes) with micromamba into $CONDA_ENV, then the
# pip part with the environment's own pip (hashes required, no dependency resolution).
#
#   conda-install.sh FILE     an @EXPLICIT list, or a hashed pip requirements file
#
# $CA_URL, when set, is fetched into a temporary file for this step only and deleted before
# the step ends, so no layer holds it.
set -eu
part="$1"
ca=""
trap '[ -z "$ca" ] || rm -f "$ca"' EXIT
if [ -n "${CA_URL:-}" ]; then
    ca=$(mktemp)
    python3 -c 'import sys, urllib.request
open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=60).read())' \
        "$CA_URL" "$ca"
    export SSL_CERT_FILE="$ca" MAMBA_SSL_VERIFY="$ca" PIP_CERT="$ca"
fi
if grep -q '^@EXPLICIT' "$part"; then
    # micromamba's package cache lives and dies with this step.
    export MAMBA_ROOT_PREFIX=/tmp/micromamba
    micromamba create --yes --quiet --prefix "$CONDA_ENV" --file "$part"
    rm -rf "$MAMBA_ROOT_PREFIX"
elif grep -q '^[^#]' "$part"; then
    "$CONDA_ENV/bin/python" -m pip install --quiet --no-cache-dir --require-hashes \
        --no-deps -r "$part"
fi
