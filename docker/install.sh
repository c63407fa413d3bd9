#!/bin/sh
# Install one part of a cell's lock into /opt/venv (made on first use), strictly from the
# lock: hashes required, no dependency resolution. Run by docker/Dockerfile's install steps.
#
# Packages come from $WHEELS (a --find-links address; nothing else is reached, no TLS) or
# else from uv's default index plus $EXTRA_INDEX_URL. $CA_URL, when set, is fetched into a
# temporary file for this step only and deleted before the step ends, so no layer holds it.
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
    export SSL_CERT_FILE="$ca"
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
