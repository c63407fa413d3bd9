#!/bin/sh
# The install steps of docker/Dockerfile, strictly from the cell's lock: hashes required, no
# dependency resolution.
#
#   install.sh cuda FILE      the shared CUDA libraries into /opt/cuda (no venv, no Python)
#   install.sh interpreter    register /opt/python's libpython (a copied CPython), if any
#   install.sh venv FILE      into /opt/venv (made on first use, with /opt/cuda on its path)
#   install.sh debs NAME...   Debian packages fetched from $WHEELS/debs/, installed, deleted
#
# Packages come from $WHEELS (a --find-links address; nothing else is reached, no TLS) or
# else from uv's default index plus $EXTRA_INDEX_URL. $CA_URL, when set, is fetched into a
# temporary file for this step only and deleted before the step ends, so no layer holds it.
set -eu
export UV_PYTHON_DOWNLOADS=never UV_NO_CACHE=1
# uv unpacks into a temporary folder on the same filesystem and hardlinks from it: each file
# is written once (a copy would write the tree twice and need twice the disk).
export UV_LINK_MODE=hardlink
step="$1"
shift
fetch() {
    python3 -c 'import sys, urllib.request
open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=300).read())' "$1" "$2"
}
ca=""
trap '[ -z "$ca" ] || rm -f "$ca"' EXIT
if [ -n "${CA_URL:-}" ]; then
    ca=$(mktemp)
    fetch "$CA_URL" "$ca"
    export SSL_CERT_FILE="$ca"
fi
source_args() {
    if [ -n "${WHEELS:-}" ]; then
        echo --no-index --find-links "$WHEELS"
    else
        echo ${EXTRA_INDEX_URL:+--extra-index-url "$EXTRA_INDEX_URL"}
    fi
}
case "$step" in
cuda)
    [ -s "$1" ] || exit 0
    # shellcheck disable=SC2046
    uv pip install --quiet --python python3 --target /opt/cuda --require-hashes --no-deps \
        $(source_args) -r "$1"
    # The dynamic linker finds them, as it would beside torch in the venv: torch loads its
    # CUDA libraries through its RUNPATH, and each torch release's Python fallback differs.
    find /opt/cuda -type d -path '*/lib' -name lib | sort > /etc/ld.so.conf.d/audiomatrix-cuda.conf
    ldconfig
    ;;
interpreter)
    [ -d /opt/python/bin ] || exit 0
    echo /opt/python/lib > /etc/ld.so.conf.d/audiomatrix-python.conf
    ldconfig
    ;;
venv)
    if [ ! -x /opt/venv/bin/python ]; then
        # A copied CPython by its own path: 3.11 and later find their standard library from
        # where the executable is, not through a symlink to it.
        python="python$PYTHON"
        [ ! -x "/opt/python/bin/python$PYTHON" ] || python="/opt/python/bin/python$PYTHON"
        uv venv --quiet --python "$python" /opt/venv
        site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
        echo /opt/cuda > "$site/audiomatrix-cuda.pth"
    fi
    [ -s "$1" ] || exit 0
    # shellcheck disable=SC2046
    uv pip install --quiet --python /opt/venv/bin/python --require-hashes --no-deps \
        --compile-bytecode $(source_args) -r "$1"
    ;;
debs)
    [ "$#" -gt 0 ] || exit 0
    folder=$(mktemp -d)
    for name in "$@"; do
        fetch "${WHEELS:?Debian packages come from the wheelhouse}debs/$name" "$folder/$name"
    done
    dpkg -i "$folder"/*.deb > /dev/null
    rm -rf "$folder"
    ;;
*)
    echo "install.sh: unknown step $step" >&2
    exit 2
    ;;
esac
