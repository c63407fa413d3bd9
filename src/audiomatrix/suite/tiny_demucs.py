"""A tiny HTDemucs with fixed weights, saved as a Demucs model package.

The package is the dict that `demucs.states.serialize_model` builds (klass, args, kwargs, state,
training_args), written by `demucs.states.save_with_checksum` (torch.save to a buffer, file name
suffixed with the first 8 hex digits of its sha256), the way Demucs exports its released `.th`
files. `serialize_model` itself is not called because it needs OmegaConf, which Demucs only
installs with its training extra; its dict is reproduced field by field instead.

The kwargs carry `segment` as a `fractions.Fraction`, as the released HTDemucs packages do, so the
pickle references exactly the globals a real one does: `demucs.htdemucs.HTDemucs` and
`fractions.Fraction`, besides torch's own tensor-rebuild globals.

Imported inside the test bodies, never at collection time: importing it needs torch and demucs.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from audiomatrix.suite import golden

SOURCES = ["drums", "bass", "other", "vocals"]
SAMPLERATE = 44100
AUDIO_CHANNELS = 2
SEGMENT = Fraction(1, 1)  # seconds; the released htdemucs uses Fraction(39, 5)

# Small enough to run a second of stereo in well under a second on 2 cores, deep enough that
# both branches (spectrogram and waveform) and the cross transformer take part.
TINY_KWARGS = dict(
    sources=SOURCES,
    audio_channels=AUDIO_CHANNELS,
    samplerate=SAMPLERATE,
    segment=SEGMENT,
    channels=8,
    depth=3,
    nfft=512,
    t_layers=1,
    t_heads=2,
    dconv_depth=1,
    dconv_comp=4,
)


def build_model(shift: float = 0.0):
    """An HTDemucs with TINY_KWARGS and golden.fixed_weights, the same in every cell (moved
    by `shift` for the negative control)."""
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    model = HTDemucs(**TINY_KWARGS)
    golden.fixed_weights(model, shift)
    model.eval()
    return model


def package(model) -> dict:
    """What demucs.states.serialize_model(model, training_args, quantizer=None, half=True)
    returns, with training_args already turned into plain containers (as it does)."""
    from demucs.states import get_state

    args, kwargs = model._init_args_kwargs  # recorded by demucs.states.capture_init
    return {
        "klass": model.__class__,
        "args": args,
        "kwargs": kwargs,
        "state": get_state(model, None, half=True),
        "training_args": {"model": "htdemucs", "seed": 0, "dset": {"sources": list(SOURCES)}},
    }


def save_package(model, directory: Path) -> Path:
    """Write the model package into `directory` with demucs' save_with_checksum; its path."""
    from demucs.states import save_with_checksum

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_with_checksum(package(model), directory / "tiny_htdemucs.th")
    written = sorted(directory.glob("tiny_htdemucs-*.th"))
    assert len(written) == 1, f"save_with_checksum wrote {written}"
    return written[0]
