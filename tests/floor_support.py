"""Distributions for platform-floor tests: a wheel renamed to a platform tag, and a source-only distribution whose
build leaves a trace."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

#: The ``build_sdist`` hook of the in-tree backends below: the project's three files under ``<name>-<version>/``.
_BUILD_SDIST = '''

def build_sdist(sdist_directory, config_settings=None):
    name = f"{NAME}-{VERSION}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as sdist:
        for file in ("pyproject.toml", "backend.py", "PKG-INFO"):
            sdist.add(file, f"{NAME}-{VERSION}/{file}")
    return name
'''

#: An in-tree PEP 517 backend without requirements (so uv builds it offline): its wheel is tagged for the build
#: machine (``cp3X-cp3X-linux_x86_64``, as a compiled extension's would be) and every wheel build appends a line to
#: the file ``$HOSTBUILT_BUILD_LOG`` names.
HOSTBUILT_BACKEND = '''
import base64, hashlib, os, sys, sysconfig, tarfile, zipfile

NAME, VERSION = "hostbuilt", "1.0"
METADATA = f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"


def _tag():
    cp = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    return f"{cp}-{cp}-" + sysconfig.get_platform().replace("-", "_").replace(".", "_")


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open(os.environ["HOSTBUILT_BUILD_LOG"], "a") as log:
        log.write("built\\n")
    dist_info = f"{NAME}-{VERSION}.dist-info"
    files = {f"{NAME}/__init__.py": b"BUILT_HERE = True\\n", f"{dist_info}/METADATA": METADATA.encode(),
             f"{dist_info}/WHEEL": f"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: false\\nTag: {_tag()}\\n".encode()}
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\\n" for path, data in files.items()) + f"{dist_info}/RECORD,,\\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    name = f"{NAME}-{VERSION}-{_tag()}.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return name

'''


def build_hostbuilt_sdist(work: Path, links: Path) -> Path:
    """``hostbuilt-1.0.tar.gz``: a source distribution only, of the :data:`HOSTBUILT_BACKEND` project."""
    return _backend_sdist(work, links, "hostbuilt", HOSTBUILT_BACKEND)


def _backend_sdist(work: Path, links: Path, name: str, backend: str) -> Path:
    """``<name>-1.0.tar.gz`` in ``links``: the sdist of a project built by the in-tree ``backend`` (its source)."""
    root = work / name
    root.mkdir()
    (root / "pyproject.toml").write_text('[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                                         f'backend-path = ["."]\n\n[project]\nname = "{name}"\nversion = "1.0"\n')
    (root / "backend.py").write_text(backend + _BUILD_SDIST)
    (root / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    subprocess.run([sys.executable, "-c", f"import backend; backend.build_sdist({str(links)!r})"], cwd=root,
                   check=True, capture_output=True)
    return links / f"{name}-1.0.tar.gz"


def retagged_wheel(work: Path, links: Path, name: str, version: str, tag: str, *,
                   extra_files: dict[str, Path] | None = None) -> Path:
    """A wheel of ``name`` built with hatchling and renamed to ``<name>-<version>-<tag>.whl`` in ``links`` (uv chooses
    wheels by file name); ``extra_files`` (path in the wheel -> file) are packaged too, e.g. a compiled library."""
    package = name.lower().replace("-", "_")
    root = work / f"{package}-{version}-{tag}"
    (root / "src" / package).mkdir(parents=True)
    (root / "src" / package / "__init__.py").write_text(f"VERSION = {version!r}\n")
    for relative, source in (extra_files or {}).items():
        shutil.copyfile(source, root / "src" / relative)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n\n'
        f'[tool.hatch.build.targets.wheel]\npackages = ["src/{package}"]\n')
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(root / "dist")], cwd=root,
                   check=True, capture_output=True)
    (built,) = (root / "dist").iterdir()
    return Path(shutil.copyfile(built, links / f"{package}-{version}-{tag}.whl"))


#: A PEP 517 backend whose wheel build fails after 200 lines of compiler-like output on stderr (so uv's own error
#: lines come long before the end of its output).
FAILING_BACKEND = '''
import os, sys, tarfile

NAME, VERSION = "brokenbuild", "1.0"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    for line in range(200):
        print(f"cc -c part{line}.c: warning: something", file=sys.stderr)
    raise SystemExit("part200.c: error: the compiler gave up")

'''


def build_failing_sdist(work: Path, links: Path) -> Path:
    """``brokenbuild-1.0.tar.gz``: a source distribution whose wheel build fails (:data:`FAILING_BACKEND`)."""
    return _backend_sdist(work, links, "brokenbuild", FAILING_BACKEND)
