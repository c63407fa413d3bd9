#!/bin/sh
# `check --python` on three torch environments made as users make them (uv venv + uv pip
# install, CPython 3.11, venvs outside the repository): `sh evidence/check/python-stacks.sh`
# from the repository root, audiomatrix on PATH (or AUDIOMATRIX="python -m audiomatrix").
# Each stack's install and check go to python-<stack>.out (the check's progress, its exit code
# and wall time, a hash over the venv's files and contents before and after), its findings to
# python-<stack>.json. About 2 minutes to install from a warm uv cache and 7 to check, each.
set -u
AM=${AUDIOMATRIX:-audiomatrix}
E=evidence/check
stack() {
  name=$1; shift
  venv=${TMPDIR:-/tmp}/audiomatrix-check-$name
  listing() { (cd "$venv" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
  rm -rf "$venv"
  { echo "\$ uv venv -p 3.11 $venv"; uv venv -q -p 3.11 "$venv" 2>&1
    echo "\$ uv pip install --python $venv/bin/python $*"
    uv pip install -q --python "$venv/bin/python" "$@" 2>&1; echo "[exit $?]"
    echo "\$ uv pip freeze --python $venv/bin/python (the stack's packages)"
    uv pip freeze --python "$venv/bin/python" \
      | grep -iE '^(torch|torchaudio|torchcodec|tts|coqui-tts|transformers|tokenizers|demucs|numpy|six|setuptools)=='
    before=$(listing)
    echo "\$ audiomatrix check --python $venv/bin/python --json > $E/python-$name.json"
    start=$(date +%s.%N)
    $AM check --python "$venv/bin/python" --json 2>&1 > "$E/python-$name.json"; rc=$?
    end=$(date +%s.%N)
    echo "[exit $rc, $(echo "$end - $start" | bc) s]"
    echo "files and hashes of the venv before: $before"
    echo "files and hashes of the venv after:  $(listing)"; } > "$E/python-$name.out"
  rm -rf "$venv"
}
# TTS 0.22 as its README installs it: transformers resolves too new (the legacy row).
stack legacy torch==2.5.1 torchaudio==2.5.1 TTS==0.22.0 demucs==4.0.1
# The maintained stack on torch 2.9.1 as its row has it (six not added).
stack maintained torch==2.9.1 torchaudio==2.9.1 torchcodec==0.9.1 coqui-tts==0.28.0 demucs==4.1.0
# TTS 0.22 with transformers 4.56 (before BeamSearchScorer went, after generate did).
stack transformers-too-new torch==2.5.1 torchaudio==2.5.1 TTS==0.22.0 demucs==4.0.1 transformers==4.56.2
