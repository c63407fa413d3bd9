"""The probes that decide where a catalogued failure starts: per edge of an entry's range, a
few lines of Python that hit the failure the way the matrix's workloads do.

A probe runs in a fresh venv holding `package` at the version under test, its `pins` (held
fixed and recorded with the measurement) and `also` (helpers, resolved freely). Exit 0 means
the release works; the entry's own pattern in the output means it fails; anything else
decides nothing. Pins are the versions the matrix's locks hold where that matters (TTS
0.22.0 of the legacy stack, transformers 5.23.0 of the maintained one), or a release on the
working side of another edge, so that only `package` moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FFmpeg = Literal["needed", "absent", "indifferent"]


@dataclass(frozen=True)
class Probe:
    """How one edge of one catalog entry is decided (see the module's docstring)."""

    id: str
    entry: str
    package: str
    about: str
    snippet: str
    pins: dict[str, str] = field(default_factory=dict)
    also: tuple[str, ...] = ()
    no_deps: tuple[str, ...] = ()
    """Pins installed after the rest, without their dependencies (a wheel used for one
    module whose other requirements do not matter here)."""
    paired: tuple[str, ...] = ()
    """Installed at the version under test too: torchaudio's releases follow torch's, and a
    torchaudio built for another torch fails to load its library before the probe decides."""
    ffmpeg: FFmpeg = "indifferent"
    python: str = "3.11"


# Loads one module of an installed distribution by its path, so that a package's heavy
# __init__ chain (TTS 0.22's layers import every loss) stays out of the probe.
_BY_PATH = """
import importlib.util, pathlib
def by_path(package, relative):
    root = pathlib.Path(importlib.util.find_spec(package).origin).parent
    spec = importlib.util.spec_from_file_location(relative.replace("/", "."), root / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
"""

_TORCHAUDIO_ROUND_TRIP = """
import os, tempfile, torch, torchaudio
path = os.path.join(tempfile.mkdtemp(), "probe.wav")
torchaudio.save(path, torch.zeros(1, 1600), 16000)
wav, rate = torchaudio.load(path)
assert rate == 16000 and tuple(wav.shape) == (1, 1600), (rate, wav.shape)
"""

_INT16 = """
import os, tempfile, soundfile, torch, torchaudio
x = (torch.sin(torch.arange(1600) / 8) * 16000).to(torch.int16).unsqueeze(0)
path = os.path.join(tempfile.mkdtemp(), "probe.wav")
torchaudio.save(path, x, 16000, encoding="PCM_S", bits_per_sample=16)
back, _ = soundfile.read(path, dtype="int16")
if not (back == x.numpy()[0]).all():
    raise SystemExit("torchaudio.save stored other samples (PCM_16)")
"""

_FLOAT = """
import os, tempfile, soundfile, torch, torchaudio
x = torch.sin(torch.arange(1600) / 8).unsqueeze(0) * 0.5
path = os.path.join(tempfile.mkdtemp(), "probe.wav")
torchaudio.save(path, x, 16000, encoding="PCM_F", bits_per_sample=32)
subtype = soundfile.info(path).subtype
if subtype != "FLOAT":
    raise SystemExit(f"stored {subtype}, asked for FLOAT")
"""

# A stand-in module gives the pickled global the checkpoint's name (XTTS's config class needs
# all of TTS 0.22 to import); what decides is torch.load's default, which is torch's alone.
_XTTS_LOAD = """
import os, sys, tempfile, torch
root = tempfile.mkdtemp()
os.makedirs(os.path.join(root, "TTS", "tts", "configs"))
for part in ("TTS", "TTS/tts", "TTS/tts/configs"):
    open(os.path.join(root, part, "__init__.py"), "w").close()
with open(os.path.join(root, "TTS/tts/configs/xtts_config.py"), "w") as f:
    f.write("class XttsConfig:\\n    pass\\n")
sys.path.insert(0, root)
from TTS.tts.configs.xtts_config import XttsConfig
path = os.path.join(root, "model.pth")
torch.save({"config": XttsConfig(), "model": {}}, path)
torch.load(path, map_location="cpu")
"""

_DEMUCS_LOAD = """
import os, tempfile, torch
from demucs.htdemucs import HTDemucs
path = os.path.join(tempfile.mkdtemp(), "htdemucs.th")
torch.save({"klass": HTDemucs, "args": (), "kwargs": {"sources": ["vocals"]}, "state": {}}, path)
torch.load(path, map_location="cpu")
"""

_GENERATE = (
    _BY_PATH
    + """
import torch
from transformers import GPT2Config, GPT2Model
gpt_inference = by_path("TTS", "tts/layers/xtts/gpt_inference.py")
config = GPT2Config(vocab_size=8, n_positions=8, n_embd=8, n_layer=1, n_head=1)
model = gpt_inference.GPT2InferenceModel(
    config, GPT2Model(config), torch.nn.Identity(), torch.nn.Embedding(8, 8),
    torch.nn.LayerNorm(8), torch.nn.Linear(8, 8), True,
)
model.generate
"""
)

# coqui-tts 0.27's `import TTS` reaches transformers.pytorch_utils.isin_mps_friendly, which
# transformers 5 no longer has, and declares no upper bound; some of its releases also import
# six without declaring it (coqui-tts-six-undeclared). Each would hide the failure probed, so
# its releases get the transformers 4 they were made for, and six.
_COQUI_27_HELPERS = ("transformers<5", "six")

PROBES: tuple[Probe, ...] = (
    Probe(
        id="torchaudio-round-trip",
        entry="torchcodec-missing",
        package="torchaudio",
        about="torchaudio.save then torchaudio.load of a WAV, no TorchCodec installed",
        snippet=_TORCHAUDIO_ROUND_TRIP,
        also=("soundfile",),
    ),
    Probe(
        id="torchaudio-load-no-ffmpeg",
        entry="torchcodec-unloadable",
        package="torchaudio",
        about="the same round trip with TorchCodec 0.8.1 installed, on a host without FFmpeg",
        snippet=_TORCHAUDIO_ROUND_TRIP,
        pins={"torchcodec": "0.8.1"},
        also=("soundfile",),
        ffmpeg="absent",
    ),
    Probe(
        id="torchaudio-save-int16",
        entry="torchcodec-int16-saturates",
        package="torchaudio",
        about="torchaudio.save of an int16 sine (PCM_S, 16 bits), read back by soundfile",
        snippet=_INT16,
        pins={"torchcodec": "0.8.1"},
        also=("soundfile",),
        ffmpeg="needed",
    ),
    Probe(
        id="torchaudio-save-float",
        entry="torchcodec-save-ignores-encoding",
        package="torchaudio",
        about="torchaudio.save with encoding PCM_F, 32 bits; soundfile reads the subtype",
        snippet=_FLOAT,
        pins={"torchcodec": "0.8.1"},
        also=("soundfile",),
        ffmpeg="needed",
    ),
    Probe(
        id="torch-load-xtts-config",
        entry="weights-only-xtts",
        package="torch",
        about="torch.load (default arguments) of a pickled TTS.tts.configs.xtts_config."
        "XttsConfig (a stand-in class of that name)",
        snippet=_XTTS_LOAD,
    ),
    Probe(
        id="torch-load-demucs-package",
        entry="weights-only-demucs",
        package="torch",
        about="torch.load (default arguments) of a Demucs package naming demucs.htdemucs.HTDemucs",
        snippet=_DEMUCS_LOAD,
        pins={"demucs": "4.1.0"},
        also=("numpy",),
    ),
    Probe(
        id="import-beamsearchscorer",
        entry="transformers-beamsearchscorer",
        package="transformers",
        about="`from transformers import BeamSearchScorer`, as TTS 0.22's stream_generator does",
        snippet="from transformers import BeamSearchScorer\n",
    ),
    Probe(
        id="gpt2-inference-generate",
        entry="transformers-generate-removed",
        package="transformers",
        about="TTS 0.22's own GPT2InferenceModel (its module loaded by path), tiny, .generate",
        snippet=_GENERATE,
        pins={"torch": "2.5.1", "TTS": "0.22.0"},
        no_deps=("TTS",),
    ),
    Probe(
        id="import-coqui-punctuation",
        entry="coqui-tts-six-undeclared",
        package="coqui-tts",
        about="TTS/tts/utils/text/punctuation.py (loaded by path) with coqui-tts's dependencies",
        snippet=_BY_PATH + 'by_path("TTS", "tts/utils/text/punctuation.py")\n',
        pins={"torch": "2.8.0", "torchaudio": "2.8.0"},
    ),
    Probe(
        id="librosa-intervals",
        entry="setuptools-pkg-resources-removed",
        package="setuptools",
        about="import librosa.core.intervals (librosa 0.10.0 imports pkg_resources there)",
        snippet="import librosa.core.intervals\n",
        pins={"librosa": "0.10.0"},
    ),
    Probe(
        id="transformers-masking-utils",
        entry="transformers-needs-newer-torch",
        package="torch",
        about="import transformers.masking_utils (what XTTS's stream generator reaches)",
        snippet="import transformers.masking_utils\n",
        pins={"transformers": "5.23.0"},
    ),
    Probe(
        id="import-coqui-tts",
        entry="coqui-tts-requires-torchcodec",
        package="coqui-tts",
        about="import TTS (coqui-tts) on torch 2.9.1 without TorchCodec",
        snippet="import TTS\n",
        pins={"torch": "2.9.1", "torchaudio": "2.9.1"},
        also=_COQUI_27_HELPERS,
    ),
    Probe(
        id="import-coqui-tts-on-torch",
        entry="coqui-tts-requires-torchcodec",
        package="torch",
        about="import TTS (coqui-tts 0.28.0) without TorchCodec, torchaudio at torch's version",
        snippet="import TTS\n",
        pins={"coqui-tts": "0.28.0"},
        paired=("torchaudio",),
    ),
)


def probe_for(entry: str, package: str) -> Probe | None:
    return next((p for p in PROBES if p.entry == entry and p.package == package), None)
