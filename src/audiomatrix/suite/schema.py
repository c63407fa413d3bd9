"""The one outcome contract of the smoke suite: which checks exist, and what a run writes.

The runner (inside a cell, standard library only), the host's collector and the report all
read these dataclasses, so a check's record has one shape from the moment it is measured to
the table. pydantic validates them on the host (stdlib dataclasses are pydantic types), with
unknown keys refused through `__pydantic_config__`, a plain dict that needs no import here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SCHEMA = 2
"""The runner's file format; 1 had no measured facts and no provenance."""

Status = Literal["pass", "fail", "corrupt", "hang", "crash", "skip"]
Mode = Literal["raw", "compat"]
MODES: tuple[Mode, ...] = ("raw", "compat")
"""raw: the environment as installed; compat: with audiomatrix.compat's remedies applied."""
FAILED = frozenset({"fail", "corrupt", "hang", "crash"})

_STRICT = {"extra": "forbid"}


@dataclass(frozen=True)
class Check:
    """A smoke check: the test function `test_<name>` in `<module>.py` of the suite."""

    name: str
    module: str
    workload: str | None
    """The user workload it stands for (recommend --workload), or None for a building block."""

    @property
    def node(self) -> str:
        return f"{self.module}.py::test_{self.name}"


CHECKS: tuple[Check, ...] = (
    Check("xtts", "test_xtts", "xtts"),
    Check("xtts_service", "test_xtts", "xtts"),
    Check("xtts_concurrent", "test_xtts", None),
    Check("xtts_api", "test_xtts", "xtts"),
    Check("xtts_stream", "test_xtts", "xtts"),
    Check("demucs", "test_demucs", "demucs"),
    Check("demucs_file", "test_demucs", "demucs"),
    Check("demucs_mp3", "test_demucs", "demucs"),
    Check("diffrhythm_write", "test_diffrhythm", "diffrhythm"),
    Check("torchaudio_io", "test_torchaudio", None),
    Check("torch_load", "test_torch_load", None),
    Check("accelerator", "test_accelerator", None),
)
"""Every check of the suite, in table order."""


def workloads() -> dict[str, tuple[str, ...]]:
    """What a user asks for -> the checks that must pass for it."""
    found: dict[str, tuple[str, ...]] = {}
    for check in CHECKS:
        if check.workload:
            found[check.workload] = (*found.get(check.workload, ()), check.name)
    return found


@dataclass(frozen=True)
class Fingerprint:
    """An output of a check, as golden.record summarises it for the comparison across cells."""

    __pydantic_config__ = _STRICT

    shape: list[int]
    sketch: list[float]
    """golden.sketch: signed sums whose distances estimate the output's."""
    tolerance: float
    """The relative error float32 arithmetic allows this output (golden.tolerance)."""
    control_of: str | None = None
    """For a negative control: the fingerprint it must drift from."""


@dataclass(frozen=True)
class CheckOutcome:
    """One check in one mode, as its process ended."""

    __pydantic_config__ = _STRICT

    check: str
    status: Status
    duration_s: float
    first_error: str | None = None
    """`Type: message` of the failure, or the skip reason."""
    log: str | None = None
    """The check's full output, relative to the folder the run was collected into."""
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    """Its outputs' fingerprints by name, where it makes them (golden outputs)."""


@dataclass(frozen=True)
class ModeRecord:
    """<out>/<mode>.json: every check of one mode."""

    __pydantic_config__ = _STRICT

    schema: int
    mode: Mode
    started: float
    finished: float
    checks: list[CheckOutcome]


@dataclass(frozen=True)
class Host:
    """The machine the run saw: OS, CPU and, where there is one, the GPU and its driver."""

    __pydantic_config__ = _STRICT

    os: str
    """platform.platform()."""
    machine: str
    cpu: str
    distribution: str | None = None
    """`debian 12 (bookworm)` from /etc/os-release; `macos 14.5`; `windows 10.0.x`."""
    gpu: str | None = None
    compute_capability: str | None = None
    driver: str | None = None


@dataclass(frozen=True)
class Facts:
    """What the cell's declaration is checked against, measured inside the environment."""

    __pydantic_config__ = _STRICT

    python: str
    """major.minor.micro of the interpreter that ran the suite."""
    libpython: bool
    """Whether libpython3.X.so.1.0 loads: TorchCodec's custom ops link against it."""
    torch: str | None = None
    """torch.__version__ with its local tag (2.9.1+cu128)."""
    cuda: str | None = None
    """torch.version.cuda: the CUDA the wheel was built against; None for a CPU build."""
    torchcodec: str | None = None
    ffmpeg: str | None = None
    """The FFmpeg major the process really loaded (libavutil's major minus 52), else found."""
    libavutil: str | None = None
    gpu_arch: dict[str, object] = field(default_factory=dict)
    """The wheel's compiled GPU code (fatbin.measure_torch), measured without a GPU."""
    cuda_libraries: dict[str, str] = field(default_factory=dict)
    """Installed nvidia-* runtime distributions and their versions."""
    installed: dict[str, str] = field(default_factory=dict)
    """Every installed distribution by normalised name: compared with the lock's pins."""


@dataclass(frozen=True)
class Provenance:
    """Content hashes of what produced the result, so that a changed suite marks it stale."""

    __pydantic_config__ = _STRICT

    suite_sha256: str
    compat_sha256: str


@dataclass(frozen=True)
class Environment:
    """<out>/environment.json: the environment as measured, once per run."""

    __pydantic_config__ = _STRICT

    schema: int
    versions: dict[str, str | None]
    host: Host
    facts: Facts
    provenance: Provenance


@dataclass(frozen=True)
class SubsetOutcome:
    """One check run with only some of audiomatrix.compat's remedies applied: the evidence
    that this set alone makes it pass, or does not."""

    __pydantic_config__ = _STRICT

    check: str
    remedies: list[str]
    """The remedies applied (REMEDIES' names, sorted); nothing else of compat was."""
    status: Status
    duration_s: float
    first_error: str | None = None
    log: str | None = None
    """The run's full output, relative to the folder the run was collected into."""


@dataclass(frozen=True)
class RemedySplit:
    """<out>/remedies.json: for each check that failed raw and passed with compat, the runs
    with smaller sets of remedies, smallest first, up to the first size at which one passed."""

    __pydantic_config__ = _STRICT

    schema: int
    started: float
    finished: float
    applicable: list[str]
    """The remedies that change something in this environment (compat.applicable())."""
    checks: list[SubsetOutcome]
