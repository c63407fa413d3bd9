"""compatibility.json: the table the report stage makes of every run, and its reader (for diff,
recommend, publish and the views). Its JSON Schema is published beside the other records'
(audiomatrix.records.json_schemas)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

from audiomatrix.core.files import describe_error, read_text
from audiomatrix.records.base import Damaged, Record
from audiomatrix.records.publication import Published
from audiomatrix.records.run import Where
from audiomatrix.suite.schema import Facts, Host, Status

SCHEMA_VERSION = 2
JSON_FILE = "compatibility.json"

GoldenVerdict = Literal["match", "drift", "unproven"]
KernelVerdict = Literal["native", "ptx-jit", "partial", "no-kernel-image"]


class Golden(Record):
    """One check's outputs in one mode against the reference cell's, measured."""

    reference: str
    """The cell whose run the outputs were compared with."""
    outputs: list[str]
    error: float | None
    """The largest relative error over the outputs; None when their shapes differ."""
    tolerance: float
    control: float | None
    """The negative control's relative error against the reference (must exceed tolerance)."""
    verdict: GoldenVerdict
    detail: str | None = None
    """Why: the output that drifted and how, or why the comparison is unproven."""


class Lacking(Record):
    """A library of the wheel without kernels for an architecture, and what it serves."""

    library: str
    """Its path in the wheel (torch/lib/libtorch_cuda_linalg.so)."""
    ops: str
    """The operations its kernels serve, in words (table/gpu_libraries.yaml)."""


class Kernels(Record):
    """One GPU architecture's verdict for one row, and what it rests on.

    native: every container of every library with device code has SASS that runs there;
    ptx-jit: some only PTX the driver compiles at first use; partial: the main library has
    kernels, but some library (or some of its containers) has none (named in `lacking`);
    no-kernel-image: the main library (libtorch_cuda.so) has none."""

    verdict: KernelVerdict
    basis: Literal["predicted", "observed"]
    evidence: str
    """Per library, the SASS or PTX its containers run there, with the counts (predicted);
    or the GPU and check (observed), then what the wheel's code says."""
    libraries: dict[str, KernelVerdict] = {}
    """Each library with device code, by its path in the wheel: its own verdict."""
    lacking: list[Lacking] = []
    """The libraries without kernels there (partial)."""


class ProvenSet(Record):
    """A minimal set of remedies and the run with only that set, in which the check passed."""

    remedies: list[str]
    log: str | None = None
    """That run's log, relative to the repository (results/<cell>/logs/...)."""


class RemedyProof(Record):
    """For a check that failed raw and passed with compat: which remedies it needs."""

    applicable: list[str]
    """The remedies that change something in the run's environment: those the split tried."""
    minimal: list[ProvenSet]
    """Every passing set of the smallest size at which one passed ([]: no set smaller than
    all of compat was proven)."""
    tried: int
    """How many runs with fewer remedies the claim rests on."""


class Remedy(Record):
    """What one remedy cell's change did to its parent cell's checks, raw."""

    cell: str
    repairs: str
    """The parent cell: the same axes, the stack the remedy's stack names in `remedy_of`."""
    change: list[str]
    """Requirements added (+) or dropped (-) and switches (+TorchCodec, -FFmpeg)."""
    where: str
    fixes: list[str]
    """Checks that fail in the parent's run and pass in the remedy cell's."""
    still_fails: list[str]
    moved_on: dict[str, str | None] = {}
    """Checks still failing, but past the parent's failure: the signature they fail with now
    (None: an unknown failure)."""
    breaks: list[str]
    """Checks that pass in the parent's run and fail in the remedy cell's."""
    minimal: bool
    """True when the change is a single item that fixes something: the parent's failing run
    shows that nothing less works. A larger change is not claimed minimal, since no run
    proves each part."""
    runs: list[str]
    """The parent's results file, then the remedy cell's."""


class Axes(Record):
    os: str
    python: str
    torch: str
    accelerator: str
    stack: str


class Outcome(Record):
    """One check in one mode: its status and, when it failed, the known signature."""

    status: Status | Literal["drift"]
    """As the check ended, or `drift`: it passed, but its outputs left the reference's."""
    signature: str | None = None
    first_error: str | None = None
    log: str | None = None
    """The check's log, relative to the repository (results/<cell>/logs/...)."""
    golden: Golden | None = None
    """Its outputs against the reference cell's, where both made them."""


class CheckRow(Record):
    raw: Outcome | None = None
    compat: Outcome | None = None
    remedies: RemedyProof | None = None
    """Which of compat's remedies make it pass, where it failed raw and passed with compat."""


class Row(Record):
    """The latest run of one cell in one place (an image or a native venv)."""

    cell: str
    axes: Axes
    family: str | None = None
    device: str | None = None
    gpu_arch: list[str] = []
    """The GPU architectures the cell's accelerator build declares (from cell.json)."""
    installer: str = "uv"
    """What installed the cell's torch: uv from PyPI's wheels, or conda from its channels."""
    versions: dict[str, str | None]
    lock_sha256: str
    where: Where
    host: Host
    facts: Facts
    run: str
    started: datetime
    finished: datetime
    source: str
    """The results file this row comes from, relative to the repository."""
    checks: dict[str, CheckRow]
    differs: list[str] = []
    """How the measured environment departs from the cell's declaration ([] for a row of
    the table; a run that differs is listed apart)."""
    stale: bool = False
    """The run came from another suite or compat than the current one."""
    gpu: dict[str, Kernels] = {}
    """Per GPU architecture CUDA lists (table/gpu_architectures.yaml): kernels native, by PTX
    JIT only, in some libraries only, or none, predicted from the compiled code of every
    library in the wheel or observed on the run's GPU (CUDA builds only)."""
    gpu_findings: list[str] = []
    """Where the declared GPU architectures and the measurement disagree."""
    published: Published | None = None
    """Where this very image was pushed, from publications/."""
    as_of: date | None = None
    """The day the row's lock was resolved as of (its cell.json's exclude_newer; None for a
    conda lock, or a lock made with no date)."""
    newer: dict[str, str] = {}
    """Each stack package with a newer release on the index than the row's lock has, and that
    release, as environments/index.json found on its day."""


class Missing(Record):
    """A cell with no results, and why (its lock status, or `not run`)."""

    cell: str
    axes: Axes
    status: str
    reason: str | None = None
    installer: str = "uv"


class SignatureEntry(Record):
    id: str
    title: str
    remedy: str
    sources: list[str]


class Provenance(Record):
    """What the table was made with: a result whose suite differs is stale."""

    suite_sha256: str
    compat_sha256: str
    catalog_sha256: str


class Compatibility(Record):
    schema_version: Literal[2] = SCHEMA_VERSION
    provenance: Provenance
    checks: list[str]
    workloads: dict[str, list[str]]
    rows: list[Row]
    """Runs whose measured environment is the one their cell declares."""
    apart: list[Row]
    """Runs measured elsewhere than their cell declares, with what differed."""
    missing: list[Missing]
    damaged: list[Damaged]
    signatures: list[SignatureEntry]
    """Every signature some row names, for the legend."""
    remedies: list[Remedy] = []
    """What each remedy cell's declared change fixed in its parent cell, measured."""
    index_checked: date | None = None
    """The day environments/index.json asked the index for newer releases (None: never)."""


def load_text(text: str) -> Compatibility:
    return Compatibility.model_validate_json(text)


def load(path: Path) -> Compatibility:
    """A compatibility.json for diff, recommend and publish; ValueError with one line naming
    the field when it is damaged or foreign."""
    try:
        return load_text(read_text(path))
    except ValueError as exc:
        raise ValueError(describe_error(exc)) from None
