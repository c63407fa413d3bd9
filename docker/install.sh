#!/bin/sh
# Install one part of a cell's lock into /opt/venv (made on first use), strictly from the
# lock: hashes required, no dependency resolution. Run by docker/Dockerfile's install steps.
#
# Packages come from $WHEELS (a --find-links address; nothing else is reached, no TLS) or
# else from uv's default index plus $EXTRA_INDEX_URL. $CA_URL, when set, is fetched into a
# temporary file for this step only and deleted before the step ends, so no layer holds it.
#
# With $CONDA_ENV set (docker/conda.Dockerfile), a conda cell's part goes into that conda
# environment instead: an explicit list (the file says @EXPLICIT) by micromamba, which fetches
# each URL and checks its MD5 without a solve; the pip part by the environment's own pip, with
# the same rules (hashes required, no dependencies). Both fetch from the URLs in the lock.
set -eu
export UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1
# uv unpacks into a temporary folder on the same filesystem and hardlinks from it: each file
# is written once (a copy would write the tree twice and need twice the disk).
export UV_LINK_MODE=hardlink
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
if [ -n "${CONDA_ENV:-}" ]; then
    if grep -q '^@EXPLICIT' "$part"; then
        # micromamba's package cache lives and dies with this step.
        export MAMBA_ROOT_PREFIX=/tmp/micromamba
        micromamba create --yes --quiet --prefix "$CONDA_ENV" --file "$part"
        rm -rf "$MAMBA_ROOT_PREFIX"
    elif grep -q '^[^#]' "$part"; then
        "$CONDA_ENV/bin/python" -m pip install --quiet --no-cache-dir --require-hashes \
            --no-deps -r "$part"
    fi
    exit 0
fi
if [ -n "${WHEELS:-}" ]; then
    set -- --no-index --find-links "$WHEELS"
else
    set -- ${EXTRA_INDEX_URL:+--extra-index-url "$EXTRA_INDEX_URL"}
fi
[ -x /opt/venv/bin/python ] || uv venv --quiet --python "python$PYTHON" /opt/venv
if [ -s "$part" ]; then
    uv pip install --quiet --python /opt/venv/bin/python --require-hashes --no-deps \
        --compile-bytecode "$@" -r "$part"
fi
