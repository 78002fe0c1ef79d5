"""Resolution cost of a build of several target triples: one universal resolution (what hatch-pbs does, see
hatch_pbs/app/universal.py) against one resolution per triple (what it did before), with uv.

    python benchmarks/resolution.py --find-links DIR [--python-version 3.12] [--runs 3] [requirement ...]

With ``--find-links`` uv runs offline against that directory of wheels (``pip download --only-binary :all:
--platform ...`` fills one); without it uv asks its configured index. Prints the median wall time of each way, in
seconds (each run starts with an empty uv cache, so its first resolution is cold).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hatch_pbs.app.install import uv_executable
from hatch_pbs.release.triples import ALL_TARGETS, PlatformFloors, uv_python_platform


def _compile(arguments: list[str], output: Path, environment: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([uv_executable(), "pip", "compile", "--quiet", "--no-header", "--generate-hashes", "--format",
                    "pylock.toml", "--only-binary", ":all:", "--output-file", str(output), *arguments],
                   check=True, env=environment)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", nargs="*", default=["rich", "orjson"])
    parser.add_argument("--find-links", type=Path)
    parser.add_argument("--python-version", default=f"{sys.version_info[0]}.{sys.version_info[1]}")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    environment = dict(os.environ)
    if options.find_links:
        environment.update(UV_FIND_LINKS=str(options.find_links), UV_NO_INDEX="1", UV_OFFLINE="1")
    with tempfile.TemporaryDirectory() as work:
        source = Path(work, "requirements.in")
        source.write_text("".join(f"{item}\n" for item in options.requirements), encoding="utf-8")
        common = ["--python", sys.executable, "--python-version", options.python_version, str(source)]
        universal, per_triple = [], []
        for run in range(options.runs):
            environment["UV_CACHE_DIR"] = str(Path(work, f"uv-cache-{run}"))  # cold for the first compile of a run
            universal.append(_compile(["--universal", *common], Path(work, "pylock.toml"), environment))
            per_triple.append(sum(_compile(["--python-platform", uv_python_platform(triple, PlatformFloors()),
                                            *common], Path(work, f"pylock.{index}.toml"), environment)
                                  for index, triple in enumerate(ALL_TARGETS)))
    print(f"{len(options.requirements)} requirements, {len(ALL_TARGETS)} target triples, {options.runs} runs")
    print(f"one universal resolution:      {statistics.median(universal):.3f} s")
    print(f"one resolution per triple:     {statistics.median(per_triple):.3f} s")


if __name__ == "__main__":
    main()
