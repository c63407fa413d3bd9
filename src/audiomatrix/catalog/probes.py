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


def _tts_module(relative: str) -> str:
    """`module = TTS's <relative>`, loaded by path; a TTS release without that file (from
    before XTTS, or its streaming) has nothing that can fail, so the probe works there."""
    return (
        _BY_PATH
        + f"""
root = pathlib.Path(importlib.util.find_spec("TTS").origin).parent
if not (root / {relative!r}).exists():
    print("no " + {relative!r} + " in this TTS release")
    raise SystemExit(0)
module = by_path("TTS", {relative!r})
"""
    )


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
    _tts_module("tts/layers/xtts/gpt_inference.py")
    + """
import torch
from transformers import GPT2Config, GPT2Model
config = GPT2Config(vocab_size=8, n_positions=8, n_embd=8, n_layer=1, n_head=1)
model = module.GPT2InferenceModel(
    config, GPT2Model(config), torch.nn.Identity(), torch.nn.Embedding(8, 8),
    torch.nn.LayerNorm(8), torch.nn.Linear(8, 8), True,
)
model.generate
"""
)

# TTS's own stream generator driving its own GPT2InferenceModel (tiny, random) as
# Xtts.inference_stream does through GPT.get_generator, with the same generation arguments.
_STREAM = (
    _tts_module("tts/layers/xtts/stream_generator.py")
    + """
import torch
from transformers import GPT2Config, GPT2Model
gpt_inference = by_path("TTS", "tts/layers/xtts/gpt_inference.py")
module.init_stream_support()

class Positions(torch.nn.Embedding):
    def forward(self, x):
        return super().forward(torch.arange(x.shape[1], device=x.device))
    def get_fixed_embedding(self, index, device):
        return super().forward(torch.tensor([index], device=device)).unsqueeze(0)

config = GPT2Config(vocab_size=8, n_positions=32, n_embd=8, n_layer=1, n_head=1)
model = gpt_inference.GPT2InferenceModel(
    config, GPT2Model(config), Positions(32, 8), torch.nn.Embedding(8, 8),
    torch.nn.LayerNorm(8), torch.nn.Linear(8, 8), True,
)
model.store_prefix_emb(torch.zeros(1, 2, 8))
steps = model.generate_stream(
    torch.tensor([[1, 1, 6]]), bos_token_id=6, pad_token_id=7, eos_token_id=7, max_length=8,
    do_stream=True, do_sample=True, top_k=50, top_p=0.85, temperature=0.75, num_beams=1,
    num_return_sequences=1, length_penalty=1.0, repetition_penalty=10.0,
    output_attentions=False, output_hidden_states=True,
)
print(sum(1 for _ in steps), "steps streamed")
"""
)

# TTS.api's TTS(model_path=..., config_path=...) builds Synthesizer(tts_checkpoint=...,
# tts_config_path=...); the rate it saves at is set from the config right after _load_tts, so
# _load_tts here loads the config alone (a model's weights do not move the rate).
_OUTPUT_RATE = (
    _tts_module("tts/configs/xtts_config.py")
    + """
import os, tempfile
from TTS.config import load_config
from TTS.utils.synthesizer import Synthesizer

def config_only(self, tts_checkpoint, tts_config_path, use_cuda):
    self.tts_config = load_config(tts_config_path)

Synthesizer._load_tts = config_only
root = tempfile.mkdtemp()
config_path = os.path.join(root, "config.json")
module.XttsConfig().save_json(config_path)
made = load_config(config_path).audio["output_sample_rate"]
stored = Synthesizer(tts_checkpoint=root, tts_config_path=config_path).output_sample_rate
if stored != made:
    raise SystemExit(f"TTS.tts_to_file(model_path=...): stored {stored} Hz, the model makes {made}")
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
        id="import-tts-stream-generator",
        entry="transformers-beamsearchscorer",
        package="TTS",
        about="TTS's XTTS stream_generator.py (loaded by path), which imports BeamSearchScorer",
        snippet=_tts_module("tts/layers/xtts/stream_generator.py"),
        pins={"torch": "2.5.1", "transformers": "4.57.1"},
        no_deps=("TTS",),
    ),
    Probe(
        id="gpt2-inference-generate-tts",
        entry="transformers-generate-removed",
        package="TTS",
        about="the same GPT2InferenceModel.generate across TTS releases, transformers 4.52.1",
        snippet=_GENERATE,
        pins={"torch": "2.5.1", "transformers": "4.52.1"},
        no_deps=("TTS",),
    ),
    Probe(
        id="xtts-api-output-rate",
        entry="tts022-api-xtts-output-rate",
        package="TTS",
        about="the rate TTS's Synthesizer saves an XTTS model_path's speech at, against the "
        "config's output_sample_rate (a transformers from before LogitsWarper left; "
        "unidecode, which TTS 0.17.0's XTTS tokenizer imports undeclared)",
        snippet=_OUTPUT_RATE,
        pins={"torch": "2.5.1", "torchaudio": "2.5.1", "transformers": "4.40.2"},
        also=("setuptools<81", "unidecode"),
    ),
    Probe(
        id="xtts-stream-generate-tts",
        entry="xtts-stream-pad-token-tensor",
        package="TTS",
        about="TTS's stream generator on its tiny GPT2InferenceModel, transformers 4.49.0 "
        "(the legacy-pinned cells')",
        snippet=_STREAM,
        pins={"torch": "2.5.1", "transformers": "4.49.0"},
        no_deps=("TTS",),
    ),
    Probe(
        id="xtts-stream-generate",
        entry="xtts-stream-pad-token-tensor",
        package="transformers",
        about="TTS 0.22's stream generator on its tiny GPT2InferenceModel, streaming as "
        "Xtts.inference_stream does",
        snippet=_STREAM,
        pins={"torch": "2.5.1", "TTS": "0.22.0"},
        no_deps=("TTS",),
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
        id="import-coqui-tts-on-transformers-5",
        entry="coqui-tts-transformers-isin-mps-friendly",
        package="coqui-tts",
        about="import TTS (coqui-tts) with the maintained cells' transformers 5.23.0, torch 2.8",
        snippet="import TTS\n",
        pins={"transformers": "5.23.0", "torch": "2.8.0", "torchaudio": "2.8.0"},
        also=("six",),
    ),
    Probe(
        id="import-coqui-tts-27",
        entry="coqui-tts-transformers-isin-mps-friendly",
        package="transformers",
        about="import TTS (coqui-tts 0.27.5, the last release that imports isin_mps_friendly)",
        snippet="import TTS\n",
        pins={"coqui-tts": "0.27.5", "torch": "2.8.0", "torchaudio": "2.8.0"},
        also=("six",),
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
