"""diffrhythm_write: DiffRhythm's output step, exactly as upstream writes a song.

Reproduced from ASLP-lab/DiffRhythm, infer/infer.py (`inference()` and `__main__`):

    with torch.inference_mode():
        ...
        output = decode_audio(latent, vae_model, chunked=chunked)   # [b, d, n] float
        # Rearrange audio batch to a single sequence
        output = rearrange(output, "b d n -> d (b n)")
        # Peak normalize, clip, convert to int16, and save to file
        output = (output.to(torch.float32).div(torch.max(torch.abs(output)))
                  .clamp(-1, 1).mul(32767).to(torch.int16).cpu())
    ...
    torchaudio.save(output_path, generated_song, sample_rate=44100)

The VAE decode is replaced by a known stereo signal of the decoder's shape (a whole number of
2048-sample latent frames per batch item); everything after it is upstream's code path. The file
must hold exactly the int16 samples given to torchaudio.save: anything else is `corrupt`.
"""

from __future__ import annotations

import numpy as np
import pytest

from audiomatrix.suite.smokelib import CorruptOutput, tone

RATE = 44100
DOWNSAMPLING = 2048  # DiffRhythm's VAE: audio samples per latent frame
BATCH = 2  # batch_infer_num > 1, so that "(b n)" really concatenates


@pytest.mark.timeout(60)
def test_diffrhythm_write(tmp_path):
    import soundfile as sf
    import torch
    import torchaudio
    from einops import rearrange

    frames = 11 * DOWNSAMPLING  # per batch item; 2 x 11 x 2048 samples is about 1 s in all
    decoded = np.stack(
        [0.8 * tone(frames / RATE, RATE, channels=2, freq=110.0 * (b + 1)) for b in range(BATCH)]
    )  # [b, d, n], peak below 1: normalising matters
    path = tmp_path / "output.wav"

    with torch.inference_mode():
        output = torch.from_numpy(decoded)
        output = rearrange(output, "b d n -> d (b n)")
        output = (
            output.to(torch.float32)
            .div(torch.max(torch.abs(output)))
            .clamp(-1, 1)
            .mul(32767)
            .to(torch.int16)
            .cpu()
        )
    generated_song = output
    torchaudio.save(str(path), generated_song, sample_rate=44100)

    written = generated_song.numpy()  # [channels, frames] int16
    assert written.dtype == np.int16 and written.shape == (2, BATCH * frames), written.shape
    assert int(np.abs(written).max()) == 32767, "peak normalisation did not reach full scale"

    info = sf.info(str(path))
    print(f"stored: {info.samplerate} Hz, {info.channels} ch, {info.frames} frames, {info.subtype}")
    if (info.samplerate, info.channels, info.frames) != (RATE, 2, BATCH * frames):
        raise CorruptOutput(
            f"torchaudio.save stored {info.samplerate} Hz, {info.channels} ch, {info.frames}"
            f" frames ({info.subtype}); gave {RATE} Hz, 2 ch, {BATCH * frames} frames of int16"
        )
    read, _ = sf.read(str(path), dtype="int16", always_2d=True)
    read = read.T
    differ = np.flatnonzero((read != written).any(axis=0))
    if differ.size:
        first = int(differ[0])
        raise CorruptOutput(
            f"torchaudio.save stored other samples ({info.subtype}): {differ.size} of"
            f" {written.shape[1]} frames differ; first at frame {first}: wrote"
            f" {written[:, first].tolist()}, read {read[:, first].tolist()}"
        )
