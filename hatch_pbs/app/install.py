"""Installing the project's wheel and its dependencies into the artifact's ``app/`` site directory.

The installer is uv (``uv pip install --target``) with ``--python-platform`` and ``--python-version`` set for the
*target*: wheels are chosen for the target's platform, ABI and Python version, and environment markers
(``sys_platform``, ``platform_machine``, ``os_name``...) are evaluated for the target, whatever the build machine
is. The platform is the target's *floor* (options ``manylinux``, ``musllinux``, ``macos``): Linux gnu targets use
``<arch>-manylinux_2_17`` by default (python-build-standalone's own glibc floor), so the artifact runs wherever its
runtime runs. Only wheels are accepted (``--only-binary :all:``): a dependency without a wheel for the floor fails,
naming the distribution, the triple, the accepted tags and the lowest floor uv knows at which it has wheels (found
by asking uv again with raised floors). With option ``build-from-source``, the build machine's own triple may build
source distributions (:mod:`hatch_pbs.app.sdists`, the built wheels cached); another platform's never can be built
here. uv reads its usual configuration and
environment (``UV_INDEX_URL``, ``UV_FIND_LINKS``, ``UV_OFFLINE``...), so private indexes and
air-gapped wheelhouses work as they do for uv itself.

With option ``requirements``, the dependencies are exactly what a requirements file (hashes enforced with
``--require-hashes`` when it has ``--hash`` entries) or a PEP 751 ``pylock.toml`` pins, and the project's own wheel is
installed after them with ``--no-deps``.

uv resolves once, into a PEP 751 lock for the target (``uv pip compile --format pylock.toml --generate-hashes``
with the same platform options), and then installs exactly that lock (``uv pip install -r pylock.toml``), which
checks every file against the sha256 the lock records. The manifest's ``distributions`` (wheel file name and
sha256 of each installed distribution) come from that lock and the installed ``WHEEL`` files
(:mod:`hatch_pbs.app.provenance`): a single resolver decides, and what it decided is recorded, not re-derived by
another tool (pip's ``--report`` would be a second resolver that may choose differently from uv).

Bytecode is compiled afterwards (:mod:`hatch_pbs.bytecode.compiler`) by an interpreter of the target's exact
Python version (the target's own runtime for the host triple; the host triple's runtime of the same version otherwise).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hatch_pbs.app.provenance import installed_wheels
from hatch_pbs.app.record import parse_record, record_row, render_record
from hatch_pbs.app.sdists import (
    built_wheel,
    lock_with_built_wheels,
    sdist_only_packages,
)
from hatch_pbs.errors import ConfigError, InstallError
from hatch_pbs.interrupts import run_tool
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.triples import (
    PlatformFloors,
    uv_environment,
    uv_python_platform,
    wheel_platform_tags,
)

#: PEP 751 lock file names: ``pylock.toml`` or ``pylock.<name>.toml`` (``<name>`` non-empty, without dots).
_PYLOCK_NAME_RE = re.compile(r"pylock(\.[^.]+)?\.toml")
#: A ``--hash`` option in a requirements file (``--hash=sha256:...`` or ``--hash sha256:...``).
_HASH_OPTION_RE = re.compile(r"(?:^|\s)--hash[=\s]+\w+:", re.MULTILINE)


def uv_executable() -> str:
    """Path of the uv binary shipped by the ``uv`` wheel (a dependency of hatch-pbs)."""
    from uv import find_uv_bin

    return find_uv_bin()


def install_distributions(installer_python: Path, site_dir: Path, requirements: list[str], *, triple: str,
                          python_version: str, foreign: bool, requirements_file: Path | None = None,
                          floors: PlatformFloors = PlatformFloors(), build_from_source: bool = False,
                          cache: Cache | None = None, offline: bool = False,
                          universal_lock: Path | None = None) -> list[dict[str, str | None]]:
    """Install ``requirements`` (wheel paths or requirement strings) and their dependencies into ``site_dir``.

    Without a ``requirements_file``, uv resolves ``requirements`` for the target into a PEP 751 lock and installs
    exactly that lock, checking every file's sha256. With one (option ``requirements``), that file is installed
    first (``--require-hashes`` when it has ``--hash`` entries; a ``pylock.toml`` with its hashes, and it is the
    record of the files used; a requirements file is compiled beforehand only to learn the files' names and
    hashes), then ``requirements`` with ``--no-deps``.

    Args:
        installer_python: an interpreter uv may run for the install (the target runtime's for the host triple, the
            host runtime of the same Python version for foreign triples); it never decides what is installed.
        site_dir: the artifact's ``app/`` directory (created).
        requirements: what to install, e.g. ``["/tmp/x/pbs_demo-1.0.0-py3-none-any.whl"]``.
        triple: the target triple the wheels must suit.
        python_version: the target runtime's full Python version, e.g. ``"3.12.7"``.
        foreign: the target is not the build machine's triple: only wheels are accepted.
        requirements_file: a requirements file or PEP 751 lock file pinning the dependencies (see
            :func:`check_requirements_file`), or ``None``: resolve them from the distributions' metadata.
        floors: the oldest glibc / musl / macOS the wheels must suit (uv's ``--python-platform``, e.g.
            ``x86_64-manylinux_2_28``, and ``MACOSX_DEPLOYMENT_TARGET``).
        build_from_source: for the host triple (not ``foreign``), a distribution without a wheel for the floor is
            built from its source distribution by ``installer_python``; the wheel is kept in ``cache`` (a
            ``pylock.toml`` of option ``requirements`` too; for a requirements file uv builds it itself, uncached).
        cache: the hatch-pbs cache (built wheels); ``None``: a temporary one for this install.
        offline: a source distribution given by ``http(s)`` URL is not downloaded (option ``offline``).
        universal_lock: the build's one resolution of ``requirements`` for every target triple
            (:mod:`hatch_pbs.app.universal`): installed as it is, the triple's wheels taken from it, instead of a
            resolution for this triple alone.

    Returns:
        What was installed, from which file: ``[{"name", "version", "wheel", "sha256"}]`` sorted by name (see
        :func:`hatch_pbs.app.provenance.installed_wheels`); a distribution built from source names its ``sdist``.

    Raises:
        InstallError: uv failed; for a distribution without a usable wheel the message names it, the triple, the
            wheel tags that would have been acceptable and the floor option at which it has wheels (if one does),
            followed by the end of uv's output (for a hash mismatch, uv's message naming the distribution, the
            expected and the computed hash).
    """
    try:
        uv_python_platform(triple, floors)
    except ValueError as error:
        raise InstallError(str(error)) from None
    site_dir.mkdir(parents=True, exist_ok=True)
    with _install_workspace(site_dir) as work, contextlib.ExitStack() as stack:
        installer = _Installer(installer_python, site_dir, triple, python_version, floors, foreign,
                               build_from_source=build_from_source and not foreign, work=work)
        if cache is None:
            cache = Cache(Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hatch-pbs-built-"))))
        downloader = stack.enter_context(Downloader(offline=offline))
        if universal_lock is not None:
            return installer.from_lock(universal_lock, cache, downloader)
        if requirements_file is None:
            return installer.from_requirements(requirements, cache, downloader)
        return installer.from_requirements_file(requirements_file, requirements, cache, downloader)


@contextlib.contextmanager
def _install_workspace(site_dir: Path) -> Iterator[Path]:
    """A temporary directory for one install's locks and built wheels, removed when the block ends, however it
    ends; so is uv's lock of the ``--target`` directory ``site_dir/.lock`` (world-writable, no part of an
    artifact) unless it existed before."""
    work = Path(tempfile.mkdtemp(prefix="hatch-pbs-lock-"))
    uv_lock = site_dir / ".lock"
    keep_lock = uv_lock.exists()
    try:
        yield work
    finally:
        if not keep_lock and uv_lock.is_file() and not uv_lock.is_symlink():
            uv_lock.unlink()
        shutil.rmtree(work, ignore_errors=True)


#: Makes one uv command for the given floors, wheels only when the flag is true (else as option
#: ``build-from-source`` says): ``(command, extra environment)``.
_Step = Callable[[PlatformFloors, bool], "tuple[list[str], dict[str, str]]"]


@dataclass
class _Installer:
    """The uv commands of one install (see :func:`install_distributions`), for any floors."""

    python: Path
    site_dir: Path
    triple: str
    python_version: str
    floors: PlatformFloors
    foreign: bool
    build_from_source: bool  # and not foreign
    work: Path

    def _platform(self, floors: PlatformFloors, wheels_only: bool = False) -> list[str]:
        binary = [] if self.build_from_source and not wheels_only else ["--only-binary", ":all:"]
        return ["--python", str(self.python), "--python-platform", uv_python_platform(self.triple, floors),
                "--python-version", self.python_version, "--no-progress", *binary]

    def _environment(self, floors: PlatformFloors) -> dict[str, str]:
        # The interpreter uv runs belongs to the artifact (or is the build's compiler): its imports must not leave
        # .pyc files (of build-machine paths, at build time) in its standard library.
        return {"PYTHONDONTWRITEBYTECODE": "1", **uv_environment(self.triple, floors)}

    def compiling(self, source: Path, output: Path) -> _Step:
        return lambda floors, wheels_only: (
            [uv_executable(), "pip", "compile", "--quiet", "--no-header", "--generate-hashes", "--format",
             "pylock.toml", *self._platform(floors, wheels_only), "--output-file", str(output), str(source)],
            self._environment(floors))

    def installing(self, *arguments: str, dry_run: bool = False) -> _Step:
        return lambda floors, wheels_only: (
            [uv_executable(), "pip", "install", "--quiet", "--target", str(self.site_dir),
             *self._platform(floors, wheels_only), "--link-mode", "copy", *(["--dry-run"] if dry_run else []),
             *arguments], self._environment(floors))

    def run(self, step: _Step, purpose: str, *, check_floors: _Step | None = None) -> None:
        """Run ``step`` at the configured floors; a distribution without a usable wheel is reported with the
        floor at which ``check_floors`` (default ``step``) succeeds."""
        command, environment = step(self.floors, False)
        try:
            run_tool(command, purpose, environment)
        except InstallError as error:
            missing = _distribution_without_wheel(str(error))
            if missing is None:
                failed = _failed_build(str(error))
                if failed is None:
                    raise
                advice = self._floor_advice(check_floors or step, wheels_only=True, built=True)
                raise InstallError(f"{failed} could not be built from its source distribution for {self.triple} "
                                   f"(Python {self.python_version}){advice}\n{error}") from None
            advice = self._floor_advice(check_floors or step)
            raise InstallError(
                f"{missing} has no usable wheel for {self.triple} (Python {self.python_version}); acceptable wheel "
                f"tags: {', '.join(acceptable_wheel_tags(self.triple, self.python_version, floors=self.floors))}"
                f"{advice}\n{error}") from None

    def _floor_advice(self, step: _Step, *, wheels_only: bool = False, built: bool = False) -> str:
        """``"; it has wheels for a newer glibc: set manylinux = \"2_28\" ..."``: the lowest floor uv knows at which
        ``step`` succeeds (the highest is tried first: if it fails too, no floor helps), else what could.
        ``wheels_only``: probe with wheels only (after a source build failed: would a wheel do instead?)."""
        candidates = self.floors.candidates_above(self.triple)

        def succeeds(version: tuple[int, int]) -> bool:
            command, environment = step(self.floors.raised(self.triple, version), wheels_only)
            try:
                run_tool(command, "probing a higher floor", environment)
            except InstallError:
                return False
            return True

        if candidates and succeeds(candidates[-1]):
            low, high = 0, len(candidates) - 1  # candidates[high] succeeds; wheels only get more with the floor
            while low < high:
                middle = (low + high) // 2
                low, high = (low, middle) if succeeds(candidates[middle]) else (middle + 1, high)
            raised = self.floors.raised(self.triple, candidates[high])
            kind, (major, minor) = raised.for_triple(self.triple) or ("", (0, 0))
            needs = {"glibc": f"glibc {major}.{minor}", "musl": f"musl {major}.{minor}",
                     "macos": f"macOS {major}.{minor}"}[kind]
            return (f"; it has wheels for a newer platform: set {raised.option_text(self.triple)} (the artifacts "
                    f"then need {needs} or newer)")
        if built:
            return "; no platform floor uv knows has a wheel for it"
        if self.build_from_source:
            return "; no floor uv knows has a wheel for it, and it has no source distribution either"
        if not self.foreign:
            return ("; no floor uv knows has a wheel for it: build-from-source = true builds it from its source "
                    "distribution on this machine (the host triple only; the wheel is cached)")
        return "; no floor uv knows has a wheel for it, and source distributions cannot be built for another platform"

    def from_requirements(self, requirements: list[str], cache: Cache, downloader: Downloader
                          ) -> list[dict[str, str | None]]:
        """Resolve ``requirements`` into a lock and install exactly that lock."""
        source = self.work / "requirements.in"
        source.write_text("".join(f"{Path(item).resolve() if Path(item).exists() else item}\n"
                                  for item in requirements), encoding="utf-8")
        lock = self.work / "pylock.toml"  # PEP 751 names; uv refuses others
        purpose = f"installing the application and its dependencies for {self.triple} with uv"
        self.run(self.compiling(source, lock), purpose)
        probe = self.compiling(source, self.work / "pylock.probe.toml")
        installable = self._with_built_wheels(lock, cache, downloader, check_floors=probe)
        self.run(self.installing("-r", str(installable)), purpose, check_floors=probe)
        return installed_wheels(self.site_dir, [lock])

    def from_lock(self, lock: Path, cache: Cache, downloader: Downloader) -> list[dict[str, str | None]]:
        """Install exactly ``lock`` (the build's universal resolution: the triple's wheels from it)."""
        installable = self._with_built_wheels(lock, cache, downloader)
        self.run(self.installing("-r", str(installable)), f"installing the application and its dependencies "
                 f"resolved for every target triple (one resolution) for {self.triple} with uv",
                 check_floors=self.installing("-r", str(installable), dry_run=True))
        return installed_wheels(self.site_dir, [lock])

    def from_requirements_file(self, requirements_file: Path, requirements: list[str], cache: Cache,
                               downloader: Downloader) -> list[dict[str, str | None]]:
        """Install what ``requirements_file`` pins, then ``requirements`` without dependencies."""
        locks = [requirements_file]
        arguments = requirements_file_arguments(requirements_file)
        if is_pylock(requirements_file):
            arguments = ["-r", str(self._with_built_wheels(requirements_file, cache, downloader))]
        else:
            locks = [self.work / "pylock.toml"]
            command, environment = self.compiling(requirements_file, locks[0])(self.floors, False)
            try:  # only to learn the names and hashes of the files the pinned versions are installed from
                run_tool(command, "recording the files option `requirements` pins", environment)
            except InstallError:
                locks = []  # the install reports what is wrong, if anything; without a record, no file is named
        self.run(self.installing(*arguments), f"installing the dependencies pinned by {requirements_file} (option "
                 f"`requirements`) for {self.triple} with uv", check_floors=self.installing(*arguments, dry_run=True))
        self.run(self.installing("--no-deps", *requirements), f"installing the application (without dependencies: "
                 f"option `requirements` pins them) for {self.triple} with uv")
        local_wheels = [Path(item) for item in requirements if item.endswith(".whl")]
        return installed_wheels(self.site_dir, locks, local_wheels=local_wheels)

    def _with_built_wheels(self, lock: Path, cache: Cache, downloader: Downloader, *,
                           check_floors: _Step | None = None) -> Path:
        """``lock``, or (building from source) a copy naming the wheels built from its sdist-only packages.

        Raises:
            InstallError: a build failed: the message names the distribution and version, and the platform floor
                at which ``check_floors`` (default: installing ``lock``) finds a wheel instead, then uv's output.
        """
        if not self.build_from_source:
            return lock
        built = {}
        for sdist in sdist_only_packages(lock):
            try:
                wheel, _ = built_wheel(cache, sdist, lock_dir=lock.parent, triple=self.triple,
                                       python_version=self.python_version, downloader=downloader,
                                       build=self._build_wheel)
            except InstallError as error:
                advice = self._floor_advice(check_floors or self.installing("-r", str(lock), dry_run=True),
                                            wheels_only=True, built=True)
                raise InstallError(f"{sdist.name} {sdist.version} could not be built from its source distribution "
                                   f"for {self.triple} (Python {self.python_version}){advice}\n{error}") from None
            built[sdist.name] = wheel
        return lock_with_built_wheels(lock, built, self.work / "pylock.built.toml") if built else lock

    def _build_wheel(self, sdist: Path, out_dir: Path) -> None:
        # Not --quiet: a failed build's message ends with the backend's own output (the compiler's error).
        run_tool([uv_executable(), "build", "--wheel", "--no-progress", "--python", str(self.python),
                  "--out-dir", str(out_dir), str(sdist)],
                 f"building {sdist.name} from source for {self.triple} (option `build-from-source`)",
                 self._environment(self.floors))


def is_pylock(path: Path) -> bool:
    """Whether ``path`` is named like a PEP 751 lock file: ``pylock.toml`` or ``pylock.<name>.toml``."""
    return _PYLOCK_NAME_RE.fullmatch(path.name) is not None


def check_requirements_file(path: Path | None) -> None:
    """Check the file of option ``requirements`` before a build starts (``None``: no option, nothing to check).

    Raises:
        ConfigError: it does not exist or is no file, or it is a ``.toml`` file not named as PEP 751 requires
            (uv refuses other names); the message names the option and the path.
    """
    if path is None:
        return
    where = "Option `requirements` for build hook `pbs`"
    if not path.exists():
        raise ConfigError([f"{where} names {path}, which does not exist"])
    if not path.is_file():
        raise ConfigError([f"{where} names {path}, which is not a file"])
    if path.suffix == ".toml" and not is_pylock(path):
        raise ConfigError([f"{where} names {path}: a PEP 751 lock file must be named pylock.toml or "
                           f"pylock.<name>.toml"])


def requirements_file_arguments(path: Path) -> list[str]:
    """uv's arguments installing ``path``: ``-r path``, plus ``--require-hashes`` for a requirements file that
    has ``--hash`` entries (then every distribution must be pinned with a matching hash, dependencies included).
    A ``pylock.toml`` records hashes in its own format; uv checks them."""
    if is_pylock(path):
        return ["-r", str(path)]
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InstallError(f"cannot read {path} (option `requirements`): {error.strerror or error}") from None
    return ["--require-hashes", "-r", str(path)] if _HASH_OPTION_RE.search(text) else ["-r", str(path)]


def acceptable_wheel_tags(triple: str, python_version: str, *, limit: int = 8,
                          floors: PlatformFloors = PlatformFloors()) -> list[str]:
    """The most specific wheel tags (``python-abi-platform``) a CPython ``python_version`` runtime for ``triple``
    accepts at ``floors``, e.g. ``["cp312-cp312-manylinux_2_17_aarch64", ..., "py3-none-any"]``; at most ``limit``
    of them, with ``"..."`` standing for the rest. Order and rules: ``packaging.tags`` (PEP 425)."""
    from packaging import tags

    major, minor = (int(part) for part in python_version.split(".")[:2])
    platforms = wheel_platform_tags(triple, floors)
    specific = [str(tag) for tag in tags.cpython_tags((major, minor), platforms=platforms)]
    if len(specific) < limit:
        return [*specific, "py3-none-any"]
    return [*specific[: limit - 1], "...", "py3-none-any"]


def _distribution_without_wheel(uv_output: str) -> str | None:
    """The distribution uv could not find a wheel for, from uv's resolver message, or ``None``.

    uv says ``Wheels are required for `name```, ``name==1.0 has no usable wheels``, ``all versions of name have no
    wheels with a matching platform tag``, ``Wheels are available for `name` (v1.0) on the following platform``
    or, for a source distribution given directly, ``attempted to build `name```; installing a lock,
    ``Package `name` can't be installed because it is marked as `--no-build` but has no binary distribution``.
    """
    name = r"([A-Za-z0-9][A-Za-z0-9._-]*)"
    for pattern in (r"Wheels are required for `([^`]+)`", rf"(?<!\S){name}\S* (?:has|have) no (?:usable )?wheels",
                    r"Wheels are available for `([^`]+)`", r"attempted to build `([^`]+)`",
                    r"Package `([^`]+)` can't be installed because it is marked as `--no-build` but has no binary"):
        match = re.search(pattern, uv_output)
        if match:
            return match.group(1)
    return None


def _failed_build(uv_output: str) -> str | None:
    """``name version`` of the distribution whose source build failed, from uv's ``Failed to build
    `name==version``` (``× Failed to build ...`` or ``error: Failed to build ...``), or ``None``."""
    match = re.search(r"Failed to build `([A-Za-z0-9][A-Za-z0-9._-]*)==([^`\s]+)`", uv_output)
    return f"{match.group(1)} {match.group(2)}" if match else None


def normalize_installed_metadata(site_dir: Path) -> None:
    """Make the ``*.dist-info`` directories below ``site_dir`` describe the files as shipped, reproducibly.

    - ``direct_url.json`` naming a local file (the project's wheel, built in a temporary directory) is removed: the
      path means nothing in the artifact and differs between builds (PEP 610 makes the file optional); so is
      ``uv_cache.json``, uv's record of when it installed a local path.
    - ``RECORD`` is rewritten: entries of files that no longer exist (scripts dropped for Windows) are removed and
      hashes and sizes are recomputed for files the build changed (relocated shebangs), as PEP 376/627 require.
    """
    for dist_info in sorted(site_dir.glob("*.dist-info")):
        direct_url = dist_info / "direct_url.json"
        if direct_url.is_file() and '"file:' in direct_url.read_text(encoding="utf-8", errors="replace"):
            direct_url.unlink()
        (dist_info / "uv_cache.json").unlink(missing_ok=True)  # uv's cache bookkeeping, with a timestamp
        record = dist_info / "RECORD"
        if record.is_file():
            _rewrite_record(site_dir, record)


def _rewrite_record(site_dir: Path, record: Path) -> None:
    rows = []
    for row in parse_record(record.read_text(encoding="utf-8")):
        path = site_dir / row[0]
        if row[0] == f"{record.parent.name}/RECORD":
            rows.append([row[0], "", ""])
        elif ".." in Path(row[0]).parts or Path(row[0]).is_absolute():
            rows.append(row)  # outside the site directory: left as the installer wrote it
        elif path.is_file():
            rows.append(record_row(row[0], path.read_bytes()))
    record.write_text(render_record(rows), encoding="utf-8")
