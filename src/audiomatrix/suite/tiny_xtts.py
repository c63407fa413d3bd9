"""A tiny XTTS v2 checkpoint with fixed weights, laid out like the released one.

The released `coqui/XTTS-v2` folder holds `config.json`, `vocab.json` and `model.pth`, and
`model.pth` is a `torch.save` pickle of

    {"config": <XttsConfig object>, "model": <Xtts state dict>}

with the config pickled as an object, not a dict. That is why torch >= 2.6 (default
`weights_only=True`) refuses it with `Unsupported global: GLOBAL
TTS.tts.configs.xtts_config.XttsConfig`. The file was written by TTS 0.2x, where `XttsArgs` and
`XttsAudioConfig` lived in `TTS.tts.models.xtts`, so the pickle names them there, next to
`TTS.config.shared_configs.BaseDatasetConfig` (the config's `datasets`). coqui-tts 0.28 moved
both classes to `TTS.tts.configs.xtts_config` and loads old files through a scoped allow-list of
exactly these four names (`_legacy_safe_globals` in its `TTS/tts/models/xtts.py`), coqui-tts
0.27 allowed the same four globally on import (`TTS/__init__.py`), and TTS 0.22 calls plain
`torch.load` (`TTS.utils.io.load_fsspec`), so the installed torch's default decides.

`build()` reproduces that file with the installed library's own classes (`XttsConfig`,
`XttsArgs`, `XttsAudioConfig`, `BaseDatasetConfig`, `Xtts.init_from_config`) and a BPE vocab
made with `tokenizers`, then checks the pickle names exactly the released file's globals.

Size: the GPT is shrunk through `XttsArgs`, but `HifiDecoder` hard-codes its HiFi-GAN
(512 initial channels) and its ResNet speaker encoder (512-d), 23 M parameters, 93 MB as
plain float32. The large weight tensors are therefore saved as overlapping strided views of
a small buffer of their own initial values (same shape, dtype and init scale; torch.save keeps
views as views), which keeps model.pth near 2 MB. Loading is untouched: it is the ordinary
`_rebuild_tensor_v2` path every checkpoint takes.

Nothing here imports TTS or torch at module level: an ImportError of the stack must surface
inside the test that calls these functions, as a failure of that check.
"""

from __future__ import annotations

import contextlib
import pickletools
import zipfile
from pathlib import Path
from typing import Any

from audiomatrix.suite import golden

# Where TTS 0.2x defined the config classes: the names the released model.pth pickles.
LEGACY_CONFIG_MODULE = "TTS.tts.models.xtts"
# The globals of the released file that torch's weights-only unpickler does not allow by default.
RELEASED_CONFIG_GLOBALS = frozenset(
    {
        "TTS.tts.configs.xtts_config.XttsConfig",
        "TTS.tts.models.xtts.XttsArgs",
        "TTS.tts.models.xtts.XttsAudioConfig",
        "TTS.config.shared_configs.BaseDatasetConfig",
    }
)

SAMPLE_RATE = 24000  # XttsAudioConfig.output_sample_rate of the release
GPT_MAX_AUDIO_TOKENS = 12  # a random GPT rarely samples the stop code: at most 9 codes, 0.42 s
# Saved weights whose sums show that load_checkpoint really loaded model.pth.
FINGERPRINT_KEYS = (
    "gpt.mel_head.weight",
    "gpt.conditioning_encoder.init.weight",
    "hifigan_decoder.waveform_decoder.conv_pre.weight",
    "hifigan_decoder.speaker_encoder.fc.weight",
)
_COMPACT_MIN_NUMEL = 4096
_CORPUS = [
    "the quick brown fox jumps over the lazy dog.",
    "it took me quite a long time to develop a voice, and now that i have it i am not going "
    "to be silent.",
    "hello world! this is a tiny model, made for a smoke test; nothing more?",
    "she sells sea shells by the sea shore, while we wait for the next train.",
    "a voice server loads the model once and then speaks many short lines of text.",
    "pack my box with five dozen liquor jugs. how vexingly quick daft zebras jump!",
    "one two three four five six seven eight nine ten eleven twelve hundred thousand.",
    '"quoted" words, (brackets) and hyphen-ated: colons\' apostrophes.',
]


def build(directory: Path, *, shift: float = 0.0) -> tuple[Path, dict[str, float]]:
    """Write config.json, vocab.json and model.pth of a tiny XTTS v2 into `directory`.

    The weights are golden.fixed_weights, the same in every cell (moved by `shift` for the
    negative control). Returns the directory and the sums of a few saved weights
    (`FINGERPRINT_KEYS`), so a test can tell weights loaded from model.pth from the fresh
    random ones `load_checkpoint` starts from.
    """
    import torch
    from TTS.config.shared_configs import BaseDatasetConfig
    from TTS.tts.configs.xtts_config import XttsArgs, XttsAudioConfig, XttsConfig
    from TTS.tts.models.xtts import Xtts

    directory.mkdir(parents=True, exist_ok=True)
    vocab_path = directory / "vocab.json"
    number_text_tokens = write_vocab(vocab_path, XttsConfig().languages)

    # The released v2 model_args, with the GPT shrunk; the decoder sizes are fixed in the library.
    args = XttsArgs(
        gpt_max_audio_tokens=GPT_MAX_AUDIO_TOKENS,
        gpt_max_text_tokens=402,
        gpt_max_prompt_tokens=70,
        gpt_layers=1,
        gpt_n_model_channels=32,
        gpt_n_heads=2,
        gpt_number_text_tokens=number_text_tokens,
        gpt_num_audio_tokens=1026,
        gpt_start_audio_token=1024,
        gpt_stop_audio_token=1025,
        gpt_use_masking_gt_prompt_approach=True,
        gpt_use_perceiver_resampler=True,
        decoder_input_dim=32,
        d_vector_dim=512,
    )
    config = XttsConfig(
        model_args=args,
        audio=XttsAudioConfig(sample_rate=22050, output_sample_rate=SAMPLE_RATE),
        datasets=[BaseDatasetConfig()],
        temperature=0.75,
        length_penalty=1.0,
        repetition_penalty=5.0,
        top_k=50,
        top_p=0.85,
        gpt_cond_len=30,
        gpt_cond_chunk_len=4,
        max_ref_len=30,
        sound_norm_refs=False,
    )
    torch.manual_seed(0)
    model = Xtts.init_from_config(config)
    golden.fixed_weights(model, shift)
    parameters = {name for name, _ in model.named_parameters()}
    state = model.state_dict()
    for key, tensor in state.items():
        if key in parameters and tensor.dim() >= 2 and tensor.numel() >= _COMPACT_MIN_NUMEL:
            state[key] = _compact(tensor)

    config.save_json(str(directory / "config.json"))
    model_path = directory / "model.pth"
    with _legacy_class_names(XttsArgs, XttsAudioConfig):
        torch.save({"config": config, "model": state}, model_path)

    unsafe = {g for g in checkpoint_globals(model_path) if not g.startswith(_PICKLE_BUILTINS)}
    if unsafe != RELEASED_CONFIG_GLOBALS:
        raise AssertionError(
            f"tiny XTTS model.pth pickles {sorted(unsafe)}, "
            f"the released file pickles {sorted(RELEASED_CONFIG_GLOBALS)}"
        )
    return directory, {key: float(state[key].double().sum()) for key in FINGERPRINT_KEYS}


def write_speakers(directory: Path, voices: dict[str, tuple[Any, Any]]) -> Path:
    """`speakers_xtts.pth` as the release ships it: a torch.save of plain tensors,
    {name: {"gpt_cond_latent": [1, T, C], "speaker_embedding": [1, 512, 1]}}, which
    `Xtts.load_checkpoint` reads from the checkpoint folder into its `SpeakerManager`; the
    libraries unpack each entry by position, so the key order is the release's."""
    import torch

    path = directory / "speakers_xtts.pth"
    torch.save(
        {
            name: {"gpt_cond_latent": latent.cpu(), "speaker_embedding": embedding.cpu()}
            for name, (latent, embedding) in voices.items()
        },
        path,
    )
    return path


def write_vocab(path: Path, languages: list[str]) -> int:
    """A small byte-pair vocab in the released vocab.json's shape; returns the text token count.

    Like the release: `[STOP]` is 0, `[UNK]` 1, `[SPACE]` 2, then `[START]` and one `[xx]` token
    per language, a BPE model with a Whitespace pre-tokenizer.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    special = ["[STOP]", "[UNK]", "[SPACE]", "[START]"] + [f"[{lang}]" for lang in languages]
    alphabet = sorted(set("".join(_CORPUS)) - {" "} | set("abcdefghijklmnopqrstuvwxyz0123456789"))
    trainer = trainers.BpeTrainer(
        vocab_size=160, special_tokens=special, initial_alphabet=alphabet, show_progress=False
    )
    tokenizer.train_from_iterator(_CORPUS, trainer=trainer)
    tokenizer.save(str(path))
    vocab = tokenizer.get_vocab()
    if [vocab[token] for token in ("[STOP]", "[UNK]", "[SPACE]")] != [0, 1, 2]:
        raise AssertionError(f"unexpected special token ids in {path}")
    return max(vocab.values()) + 1


def checkpoint_globals(path: Path) -> set[str]:
    """The `module.name` globals a torch.save zip file's pickle refers to."""
    with zipfile.ZipFile(path) as archive:
        pickled = next(n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
        data = archive.read(pickled)
    found: set[str] = set()
    strings: list[str] = []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            module, name = str(arg).split(" ", 1)
            found.add(f"{module}.{name}")
        elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.add(f"{strings[-2]}.{strings[-1]}")
        elif isinstance(arg, str):
            strings.append(arg)
    return found


# What any torch.save of a state dict pickles (tensors, storages, OrderedDict).
_PICKLE_BUILTINS = ("torch.", "collections.OrderedDict")


def _compact(tensor: Any) -> Any:
    """`tensor`'s shape, dtype and init scale, stored in about rows*7 + row elements.

    Row i is the window starting at 7*i of a buffer holding the tensor's own first initial
    values, so rows differ and the scale of each layer's initialisation is kept.
    """
    rows = tensor.shape[0]
    row = tensor[0].numel()
    step = min(7, row)
    inner: list[int] = []
    acc = 1
    for size in reversed(tensor.shape[1:]):
        inner.insert(0, acc)
        acc *= size
    base = tensor.detach().reshape(-1)[: (rows - 1) * step + row].clone()
    return base.as_strided(tuple(tensor.shape), (step, *inner))


@contextlib.contextmanager
def _legacy_class_names(*classes: type):
    """Pickle `classes` under the module the released file names (TTS 0.2x's home of them).

    On TTS 0.22 they live there; coqui-tts 0.28 still imports them into that module, so pickle
    finds the very same class objects under the old name. Should a later version stop doing so,
    the names are bound there for the duration of the save only.
    """
    import importlib

    legacy = importlib.import_module(LEGACY_CONFIG_MODULE)
    missing = object()
    saved = [(cls, cls.__module__, getattr(legacy, cls.__name__, missing)) for cls in classes]
    try:
        for cls, _, bound in saved:
            if bound is not cls:
                setattr(legacy, cls.__name__, cls)
            cls.__module__ = LEGACY_CONFIG_MODULE
        yield
    finally:
        for cls, module, bound in saved:
            cls.__module__ = module
            if bound is missing:
                delattr(legacy, cls.__name__)
            elif bound is not cls:
                setattr(legacy, cls.__name__, bound)
