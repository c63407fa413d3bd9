#!/bin/sh
# Regenerates this folder's outputs: `sh evidence/check/run.sh` from the repository root, with
# audiomatrix on PATH (or AUDIOMATRIX="python -m audiomatrix"). Each command and its output
# go to <name>.out, with its wall time.
set -u
AM=${AUDIOMATRIX:-audiomatrix}
E=evidence/check
run() {
  name=$1; shift
  { echo "\$ audiomatrix $*"; start=$(date +%s.%N)
    $AM "$@" 2>&1; rc=$?
    end=$(date +%s.%N)
    echo "[exit $rc, $(echo "$end - $start" | bc) s]"; } > "$E/$name.out"
}
for stack in legacy maintained transformers-too-new; do
  $AM check -r $E/$stack.txt --versions-only --python-version 3.11 >/dev/null 2>&1  # warm uv's cache
  run "versions-only-$stack" check -r $E/$stack.txt --versions-only --python-version 3.11 --workload xtts --workload demucs
done
run log-pasted-windows check --log $E/pasted-windows.txt
run log-first-line-only check --log $E/pasted-first-line.txt
run log-unknown check --log $E/pasted-unknown.txt
# An environment made as users make one (uv venv + uv pip install; a tiny pure package, no
# torch, which this machine cannot download in reasonable time), checked, and its files and
# their hashes compared before and after.
venv=$E/.venv-small
uv venv -q "$venv" && uv pip install -q --python "$venv/bin/python" six
listing() { (cd "$venv" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
before=$(listing)
run python-small-venv check --python "$venv/bin/python" --check torch_load --check torchaudio_io
after=$(listing)
echo "files and hashes of the venv before: $before" >> $E/python-small-venv.out
echo "files and hashes of the venv after:  $after" >> $E/python-small-venv.out
rm -rf "$venv"
