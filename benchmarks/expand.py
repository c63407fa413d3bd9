"""Time parsing, validating and expanding a generated 200-cell matrix (target: < 1 s).

Usage: python benchmarks/expand.py [--cells N]
"""

from __future__ import annotations

import argparse
import time

import yaml

from audiomatrix.spec import matrix as spec

SOURCE = "https://example.org/fact"


def generated_matrix(cells: int) -> str:
    """A matrix with 5 axes whose product is at least `cells`, trimmed by excludes to `cells`."""
    pythons = [f"3.{m}" for m in range(10, 15)]
    torches = [f"2.{m}.0" for m in range(4, 12)]
    accelerators = ["cpu", "cu124", "cu126", "cu128", "cu130"]
    stacks = ["legacy", "maintained"]
    oses = [f"os{i}" for i in range(max(1, -(-cells // 400) + 1))]
    doc = {
        "version": 1,
        "smoke_requirements": ["pytest"],
        "os": {
            o: {
                "family": "linux",
                "base": f"debian:{o}",
                "platform": "x86_64-manylinux_2_36",
                "runner": "ubuntu-24.04",
            }
            for o in oses
        },
        "python": pythons,
        "torch": {
            t: {
                "torchaudio": t,
                "requires": [{"python": ">=3.10", "reason": "r", "source": SOURCE}],
            }
            for t in torches
        },
        "accelerator": {
            a: {
                "device": "cuda",
                "variant": a,
                "index": f"https://example.org/{a}",
                "requires": [{"torch": ">=2.5", "reason": "r", "source": SOURCE}],
            }
            for a in accelerators
        },
        "stack": {
            s: {"packages": ["demucs"], "torchcodec": False, "ffmpeg": False} for s in stacks
        },
        "matrix": {
            "os": oses,
            "python": pythons,
            "torch": torches,
            "accelerator": accelerators,
            "stack": stacks,
            "exclude": [],
            "include": [],
        },
    }
    total = len(oses) * len(pythons) * len(torches) * len(accelerators) * len(stacks)
    product = [
        {"os": o, "python": p, "torch": t, "accelerator": a, "stack": s}
        for o in oses
        for p in pythons
        for t in torches
        for a in accelerators
        for s in stacks
    ]
    doc["matrix"]["exclude"] = product[cells:total]
    doc["matrix"]["include"] = [
        {**product[i], "stack": "maintained"} for i in range(0, min(cells, 20))
    ]
    return yaml.safe_dump(doc, sort_keys=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    text = generated_matrix(args.cells)
    timings = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        matrix = spec.parse(text, "generated.yaml")
        timings.append(time.perf_counter() - start)
    best, worst = min(timings), max(timings)
    print(
        f"{len(matrix.cells)} cells ({len(text.splitlines())} YAML lines): "
        f"parse+validate+expand best {best * 1000:.0f} ms, worst {worst * 1000:.0f} ms "
        f"over {args.repeat} runs (target < 1000 ms)"
    )


if __name__ == "__main__":
    main()
