"""What the environment really is, measured from inside it (standard library only).

A result stands for its cell only if these facts match the cell's declaration, so each one
is read from what the process can see, never from what the matrix says: the distribution
from /etc/os-release, the FFmpeg that TorchCodec really loaded (from /proc/self/maps), the
CUDA the torch wheel was built against, the GPU code compiled into it (fatbin), and the
content hashes of the suite and compat that ran.
"""

from __future__ import annotations

import ctypes.util
import hashlib
import json
import platform
import re
import subprocess
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from audiomatrix.suite import schema

SUITE_DIR = Path(__file__).resolve().parent
COMPAT_FILE = SUITE_DIR.parent / "compat.py"
PACKAGES = (
    "torch", "torchaudio", "torchcodec", "TTS", "coqui-tts", "transformers", "demucs",
    "numpy", "soundfile", "tokenizers",
)  # fmt: skip
PROBE_TIMEOUT_S = 300

# Run in a child process: importing torch and TorchCodec must not happen in the runner, and
# what TorchCodec maps into memory is only visible from inside the process that loaded it.
_TORCH_PROBE = r"""
import json, re, sys
facts = {"torch": None, "cuda": None, "gpu": None, "compute_capability": None,
         "libavutil": None, "gpu_arch": {}}
try:
    import torch
except Exception:
    print(json.dumps(facts)); sys.exit(0)
facts.update(torch=torch.__version__, cuda=torch.version.cuda)
if torch.cuda.is_available():
    major, minor = torch.cuda.get_device_capability(0)
    facts.update(gpu=torch.cuda.get_device_name(0), compute_capability=f"sm_{major}{minor}")
elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
    facts.update(gpu="Apple MPS")
try:
    import torchcodec.decoders  # noqa: F401  loads libtorchcodec and its FFmpeg
except Exception:
    pass
try:
    maps = open("/proc/self/maps").read()
except OSError:
    maps = ""
found = re.search(r"libavutil[^/\s]*\.so\.(\d+)", maps)
if found:
    facts["libavutil"] = found.group(1)
try:
    import os
    from audiomatrix.suite import fatbin
    where = os.path.dirname(torch.__file__)
    measured = json.dumps(fatbin.measure_torch(where))
    # Paths of this machine stay here: the library paths are kept relative to torch's folder.
    facts["gpu_arch"] = json.loads(measured.replace(os.path.dirname(where) + os.sep, ""))
except Exception as exc:
    facts["gpu_arch"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
print(json.dumps(facts))
"""


def tree_sha256(files: list[Path], root: Path) -> str:
    """A hash of files' names (relative to root) and contents, independent of their order."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def suite_files(suite: Path = SUITE_DIR) -> list[Path]:
    return [p for p in suite.rglob("*.py") if "__pycache__" not in p.parts]


def provenance(suite: Path = SUITE_DIR, compat: Path = COMPAT_FILE) -> schema.Provenance:
    """The hashes of the suite and compat this process would run (the host computes the same
    over its checkout, so a result from an older suite is known to be stale)."""
    return schema.Provenance(
        suite_sha256=tree_sha256(suite_files(suite), suite),
        compat_sha256=hashlib.sha256(compat.read_bytes()).hexdigest(),
    )


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def normalise(name: str) -> str:
    """A distribution name as the packaging standards compare it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """Every distribution this interpreter sees, by normalised name."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(normalise(name), dist.version)
    return dict(sorted(found.items()))


def cuda_libraries(everything: dict[str, str]) -> dict[str, str]:
    """The nvidia-* runtime wheels installed beside torch, and their versions."""
    return {name: v for name, v in everything.items() if name.startswith("nvidia-")}


def ffmpeg_major(libavutil_major: int) -> int:
    """libavutil 56 is FFmpeg 4, 57 is 5, 58 is 6, 59 is 7, 60 is 8."""
    return libavutil_major - 52


def linked_libavutil() -> str | None:
    """The libavutil major the dynamic linker would find, when no process loaded one."""
    lib = ctypes.util.find_library("avutil")
    if not lib:
        return None
    found = re.search(r"\.so\.(\d+)", lib) or re.search(r"avutil[.-](\d+)", lib)
    if found:
        return found.group(1)
    try:
        return str(ctypes.CDLL(lib).avutil_version() >> 16)
    except (OSError, AttributeError):
        return None


def libpython_loads() -> bool:
    """Whether this Python's shared library can be loaded by name, as TorchCodec's is."""
    name = f"libpython{sys.version_info[0]}.{sys.version_info[1]}.so.1.0"
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def distribution() -> str | None:
    """`debian 12 (bookworm)`, `ubuntu 24.04 (noble)`, `macos 14.5`, `windows 10.0.22631`."""
    system = platform.system()
    if system == "Darwin":
        return f"macos {platform.mac_ver()[0]}"
    if system == "Windows":
        return f"windows {platform.version()}"
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return None
    fields = dict(
        (key, value.strip().strip('"'))
        for key, _, value in (line.partition("=") for line in text.splitlines())
        if key
    )
    name = fields.get("ID", "linux")
    version = fields.get("VERSION_ID", "")
    codename = fields.get("VERSION_CODENAME")
    return f"{name} {version}".strip() + (f" ({codename})" if codename else "")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia_driver() -> str | None:
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip().splitlines()[0] if proc.returncode == 0 and proc.stdout else None


def torch_facts() -> dict:
    """torch, CUDA, GPU, the FFmpeg TorchCodec loaded and the wheel's GPU code, measured in a
    child process with the cell's own interpreter."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _TORCH_PROBE],
            capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
        )  # fmt: skip
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        return {}


def measure() -> schema.Environment:
    """The environment as the suite sees it: versions, host, facts, provenance."""
    probed = torch_facts()
    everything = installed()
    libavutil = probed.get("libavutil") or linked_libavutil()
    host = schema.Host(
        os=platform.platform(),
        machine=platform.machine(),
        cpu=cpu_name(),
        distribution=distribution(),
        gpu=probed.get("gpu"),
        compute_capability=probed.get("compute_capability"),
        driver=nvidia_driver(),
    )
    facts = schema.Facts(
        python=platform.python_version(),
        libpython=libpython_loads(),
        torch=probed.get("torch"),
        cuda=probed.get("cuda"),
        torchcodec=_version_of("torchcodec"),
        ffmpeg=str(ffmpeg_major(int(libavutil))) if libavutil else None,
        libavutil=libavutil,
        gpu_arch=probed.get("gpu_arch") or {},
        cuda_libraries=cuda_libraries(everything),
        installed=everything,
    )
    return schema.Environment(
        schema=schema.SCHEMA,
        versions=versions(),
        host=host,
        facts=facts,
        provenance=provenance(),
    )


def _version_of(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    print(json.dumps(asdict(measure()), indent=2))
