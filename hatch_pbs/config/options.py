"""The hook's options, each declared once as an :class:`Option`: its name, the :class:`HookConfig` field it fills,
its check, its default, its allowed values (choice options), the environment variable overriding it, and the type,
default and description the configuration reference shows. :data:`OPTION_DECLARATIONS` lists them in the order
``known options`` messages and docs/configuration.md list them; :data:`OPTIONS` is their names.

A check takes ``(value, where, project)``: the value TOML gave, the start of its message
(``"Option `flavor` for build hook `pbs`"``) and the :class:`ProjectContext`; it returns the value as the
:class:`HookConfig` field holds it or raises ``ValueError`` with the complete message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hatch_pbs.config.checks import (
    check_bool,
    check_cache_dir,
    check_choice,
    check_exclude,
    check_floor,
    check_macos,
    check_mirror,
    check_offline_variable,
    check_pyapp,
    check_python_version,
    check_release,
    check_requirements,
    check_scripts,
    check_size,
    check_target,
    check_targets,
    check_timeout,
    default_cache_dir,
    floor_version,
)
from hatch_pbs.config.image import DEFAULT_BASE_IMAGE, IMAGE_KEYS, ImageOptions, check_image
from hatch_pbs.config.values import (
    ARCHIVE_FORMATS,
    BYTECODE_MODES,
    DEFAULT_BYTECODE,
    DEFAULT_FLAVOR,
    DEFAULT_PYAPP,
    DEFAULT_RELEASE,
    DEFAULT_STDLIB,
    DEFAULT_TIMEOUT,
    ENV_CACHE_DIR,
    ENV_MACOS,
    ENV_MIRROR,
    ENV_OFFLINE,
    ENV_RELEASE,
    FLAVOR_CHOICES,
    PYAPP_MODES,
    STDLIB_PRESETS,
    ArchiveFormat,
    BytecodeMode,
    Flavor,
    PyappMode,
    StdlibPreset,
)
from hatch_pbs.release.assets import GITHUB_DOWNLOAD_PREFIX
from hatch_pbs.release.triples import (
    ALL_TARGETS,
    DEFAULT_MACOS_DEPLOYMENT_TARGET,
    MANYLINUX_FLOOR,
    MANYLINUX_FLOORS,
    MUSLLINUX_FLOOR,
    MUSLLINUX_FLOORS,
    PlatformFloors,
)
from hatch_pbs.runtime.extract import DEFAULT_MAX_UNPACKED_SIZE

#: Keys hatchling itself reads from every build hook table (hatchling ``builders/config.py``).
HATCHLING_HOOK_KEYS = frozenset({"dependencies", "require-runtime-dependencies", "require-runtime-features",
                                 "enable-by-default"})


@dataclass(frozen=True)
class HookConfig:
    """The validated hook configuration.

    Attributes:
        python_version: ``"3.12"`` (newest patch in the release), ``"3.12.7"`` (exact) or ``None`` (the newest
            version the release has that ``requires-python`` allows).
        release: a release tag such as ``"20261021"``, or ``"latest"``.
        targets: target triples, ``host`` already replaced by the build machine's triple, duplicates removed.
        flavor: ``"install_only"``, ``"install_only_stripped"`` or ``"full"``.
        mirror: everything before ``/{release tag}/`` in asset URLs, without a trailing slash.
        cache_dir: absolute path of the download cache.
        scripts: names of the ``[project.scripts]``/``[project.gui-scripts]`` entries that get a launcher.
        offline: never open a network connection (option ``offline``; ``HATCH_PBS_OFFLINE`` overrides).
        requirements: absolute path of a requirements file (pip/uv format, hashes enforced when present) or a
            ``pylock.toml`` (PEP 751) pinning the application's dependencies; ``None``: resolve them from the
            project metadata.
        timeout: seconds a connection may take to connect or stay silent before it fails (option ``timeout``).
        max_unpacked_size: bytes an archive may expand to before extraction stops (option ``max-unpacked-size``).
        stdlib: the standard library preset, one of :data:`~hatch_pbs.config.values.STDLIB_PRESETS`.
        exclude: gitignore-style patterns (relative to the artifact root) of files left out of the artifact.
        bytecode: one of :data:`~hatch_pbs.config.values.BYTECODE_MODES`.
        archive_format: one of :data:`~hatch_pbs.config.values.ARCHIVE_FORMATS`, or ``None`` for ``tar.gz``
            (``zip`` for Windows targets).
        pyapp: ``"auto"`` (hand the artifact to Hatch's PyApp builder when cargo is found), ``"true"`` (cargo
            required) or ``"false"`` (never); see :mod:`hatch_pbs.forms.pyapp`.
        wheel: for the ``wheel`` target, build one runtime wheel per target triple (:mod:`hatch_pbs.forms.wheel`).
        floors: the oldest glibc, musl and macOS the artifacts must run on (options ``manylinux``, ``musllinux``,
            ``macos``; ``MACOSX_DEPLOYMENT_TARGET`` overrides ``macos``): wheels are chosen for them, and the audit
            refuses binaries that need newer ones.
        build_from_source: a dependency without a wheel for its floor may be built from its source distribution,
            for the build machine's own triple only (option ``build-from-source``).
        image: with option ``image``, the container image to write beside the archives (:mod:`hatch_pbs.oci`);
            ``None`` without it.
        onefile: also write one single-file executable per launcher script and target triple
            (:mod:`hatch_pbs.forms.onefile`).
    """

    python_version: str | None
    release: str
    targets: tuple[str, ...]
    flavor: Flavor
    mirror: str
    cache_dir: Path
    scripts: tuple[str, ...]
    offline: bool = False
    requirements: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_unpacked_size: int = DEFAULT_MAX_UNPACKED_SIZE
    stdlib: StdlibPreset = DEFAULT_STDLIB
    exclude: tuple[str, ...] = ()
    bytecode: BytecodeMode = DEFAULT_BYTECODE
    archive_format: ArchiveFormat | None = None
    pyapp: PyappMode = DEFAULT_PYAPP
    wheel: bool = False
    floors: PlatformFloors = field(default_factory=PlatformFloors)
    build_from_source: bool = False
    image: ImageOptions | None = None
    onefile: bool = False


@dataclass(frozen=True)
class ProjectContext:
    """What some checks need besides the value.

    Attributes:
        root: the project root; relative ``cache-dir`` and ``requirements`` paths are relative to it.
        project_scripts: every ``[project.scripts]`` and ``[project.gui-scripts]`` entry, name -> entry point.
        host: returns the build machine's target triple (raises ``ValueError`` when it has none).
    """

    root: Path
    project_scripts: Mapping[str, str]
    host: Callable[[], str]


#: ``(value, where, project)`` -> the field's value; raises ``ValueError`` with the complete message.
Checker = Callable[[Any, str, ProjectContext], Any]


@dataclass(frozen=True)
class EnvOverride:
    """An environment variable that overrides an option when set.

    Attributes:
        variable: its name, e.g. ``"HATCH_PBS_MIRROR"``.
        check: validates its text as the option's check does (``where`` names the variable).
        values_doc: the reference's description of its values (Markdown).
        blank_is_unset: a value of only spaces counts as unset (else only the empty string does).
    """

    variable: str
    check: Checker
    values_doc: str
    blank_is_unset: bool = True

    def value_in(self, environ: Mapping[str, str]) -> str | None:
        """The variable's text in ``environ``, or ``None`` when it is unset (or empty/blank, as it counts)."""
        text = environ.get(self.variable, "")
        return text if (text.strip() if self.blank_is_unset else text) else None


@dataclass(frozen=True)
class Option:
    """One option of the ``[tool.hatch.build.hooks.pbs]`` table.

    Attributes:
        name: the key, e.g. ``"cache-dir"``.
        field: the :class:`HookConfig` field it fills (``"floors.macos"``: attribute ``macos`` of ``floors``).
        shown_type: the reference's type column (Markdown), e.g. ``"array of strings"``.
        shown_default: the reference's default column (Markdown).
        doc: the reference's description (Markdown, one line however long).
        check: validates a given value; ``None`` for a choice option checked against ``choices``.
        choices: the allowed values of a choice option, in the order messages list them (else ``()``).
        default: the value when the option is unset (or invalid, so the cross-option checks can run).
        default_from: computes the default instead, from the project and ``where``; may raise ``ValueError``.
        env: the environment variable that overrides it, if any.
    """

    name: str
    field: str
    shown_type: str
    shown_default: str
    doc: str
    check: Checker | None = None
    choices: tuple[str, ...] = ()
    default: Any = None
    default_from: Callable[[ProjectContext, str], Any] | None = None
    env: EnvOverride | None = None

    def validate(self, value: Any, where: str, project: ProjectContext) -> Any:
        """The field's value for ``value`` as given; ``ValueError`` with the complete message(s), one a line."""
        if self.check is None:
            return check_choice(value, where, self.choices)
        return self.check(value, where, project)

    def default_for(self, project: ProjectContext, where: str) -> Any:
        """The field's value when the option is unset; ``ValueError`` when it cannot be found (``"host"``)."""
        return self.default if self.default_from is None else self.default_from(project, where)


def _plain(check: Callable[[Any, str], Any]) -> Checker:
    """A :data:`Checker` of a check that needs nothing from the project."""
    return lambda value, where, project: check(value, where)


def _floor(allowed: tuple[str, ...], library: str) -> Checker:
    """A floor option's check: one of ``allowed`` (``"2_28"``), held as ``(2, 28)``."""
    return lambda value, where, project: floor_version(check_floor(value, where, allowed, library), "_")


def _macos(value: Any, where: str, project: ProjectContext) -> tuple[int, int]:
    """Option ``macos``: a macOS version (``"14"``, ``"10.13"``), held as ``(14, 0)``."""
    return floor_version(check_macos(value, where), ".")


def _host_default(project: ProjectContext, where: str) -> tuple[str, ...]:
    """``targets``' default ``["host"]``, resolved only when used: cross builds work on any host."""
    return (check_target("host", f"{where} is not set and its default", project.host),)


def _markdown_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"`{value}`" for value in values)

#: Every option, in the order of the reference and of ``known options`` messages.
OPTION_DECLARATIONS: tuple[Option, ...] = (
    Option(
        name="python-version", field="python_version", check=_plain(check_python_version), default=None,
        shown_type="string",
        shown_default="the newest final CPython version in the release that `requires-python` allows",
        doc=('`"3.X"` selects the newest final `3.X.Y` in the release; `"3.X.Y"` (or a pre-release such as '
             '`"3.15.0rc1"`) selects exactly that version. Pre-releases are never chosen unless named exactly. The '
             "version must also satisfy the project's `requires-python`."),
    ),
    Option(
        name="release", field="release", check=_plain(check_release), default=DEFAULT_RELEASE,
        env=EnvOverride(ENV_RELEASE, lambda value, where, project: check_release(value.strip(), where),
                        values_doc="a release tag (`YYYYMMDD`) or `latest`, validated as `release` is"),
        shown_type="string",
        shown_default=f'`"{DEFAULT_RELEASE}"` (the newest PBS release when this hatch-pbs version was made)',
        doc=('a PBS release tag (`YYYYMMDD`), or `"latest"` to read the newest tag from `latest-release.json` at '
             'build time (needs the network; not reproducible). With a `pbs.lock` in the project root, the locked tag '
             'is used instead, and a pinned tag must equal it (see [Pinning the '
             'runtime](reproducible-builds.md#pinning-the-runtime-pbslock)). Releases before `20220227` have no '
             '`SHA256SUMS` and cannot be used.'),
    ),
    Option(
        name="targets", field="targets", check=lambda value, where, project: check_targets(value, where, project.host),
        default=(), default_from=_host_default,
        shown_type="array of strings", shown_default='`["host"]`',
        doc=('target triples, e.g. `"x86_64-unknown-linux-gnu"`. `"host"` is the build machine\'s triple (baseline '
             f'CPU level: `x86_64`, never `x86_64_v3`); `"all"` stands for {_markdown_list(ALL_TARGETS)}. '
             'Duplicates are ignored. See [cross-platform.md](cross-platform.md).'),
    ),
    Option(
        name="flavor", field="flavor", choices=FLAVOR_CHOICES, default=DEFAULT_FLAVOR,
        shown_type="string", shown_default=f'`"{DEFAULT_FLAVOR}"`',
        doc=('`"install_only_stripped"` (smallest: debug info stripped), `"install_only"`, or `"full"` (the '
             '`.tar.zst` build archive; its `python/install/` becomes the runtime and its `PYTHON.json` facts go into '
             'the manifest; build options `pgo+lto` are preferred, then `pgo`, `lto`, `noopt`; `debug` and `static` '
             'builds are never chosen).'),
    ),
    Option(
        name="mirror", field="mirror", check=_plain(check_mirror), default=GITHUB_DOWNLOAD_PREFIX,
        env=EnvOverride(ENV_MIRROR, _plain(check_mirror), values_doc="a base URL as for `mirror`",
                        blank_is_unset=False),
        shown_type="string", shown_default=f'`"{GITHUB_DOWNLOAD_PREFIX}"`',
        doc=('everything before `/{release tag}/{asset file name}` in asset URLs; must start with `http://`, '
             '`https://` or `file://`. With a mirror, `release = "latest"` reads `{mirror}/latest-release.json`.'),
    ),
    Option(
        name="cache-dir", field="cache_dir",
        check=lambda value, where, project: check_cache_dir(value, where, project.root),
        default_from=lambda project, where: default_cache_dir(),
        env=EnvOverride(ENV_CACHE_DIR, lambda value, where, project: check_cache_dir(value, where, project.root),
                        values_doc="a directory path", blank_is_unset=False),
        shown_type="string",
        shown_default=('the user cache directory (`platformdirs.user_cache_dir("hatch-pbs")`, e.g. '
                       '`~/.cache/hatch-pbs`)'),
        doc=('where downloaded assets, release catalogues and what is prepared from them (runtimes, compressed '
             'runtime parts, bytecode) are kept; a relative path is relative to the project root. `hatch-pbs cache '
             'verify` / `cache clean --cache-dir DIR` check and clean it.'),
    ),
    Option(
        name="scripts", field="scripts",
        check=lambda value, where, project: check_scripts(value, where, project.project_scripts),
        default_from=lambda project, where: tuple(sorted(project.project_scripts)),
        shown_type="array of strings", shown_default="every `[project.scripts]` and `[project.gui-scripts]` entry",
        doc="which entry points get a launcher in `bin/`. Names must exist in the project's metadata.",
    ),
    Option(
        name="offline", field="offline", check=_plain(check_bool), default=False,
        env=EnvOverride(ENV_OFFLINE, _plain(check_offline_variable),
                        values_doc=('`1`/`true`/`yes`/`on`: never open a network connection; assets and release '
                                    'catalogues must already be in the cache, or the mirror must be `file://`. '
                                    '`0`/`false`/`no`/`off` or unset: online.')),
        shown_type="boolean", shown_default="`false`",
        doc=('never open a network connection: assets and catalogues must be in the cache, or the mirror must be '
             '`file://` (`HATCH_PBS_OFFLINE` overrides).'),
    ),
    Option(
        name="requirements", field="requirements",
        check=lambda value, where, project: (project.root / check_requirements(value, where)).resolve(),
        default=None,
        shown_type="string", shown_default="none (dependencies resolved from the project metadata)",
        doc=('a requirements file (with `--hash` entries, hashes are enforced with `--require-hashes`) or a PEP 751 '
             "lock file (`pylock.toml` or `pylock.<name>.toml`) pinning the application's dependencies, relative to "
             "the project root. Only what it pins is installed, and the project's own wheel is installed with "
             '`--no-deps`. A missing file is an error. See [Pinning '
             'dependencies](reproducible-builds.md#pinning-dependencies-requirements).'),
    ),
    Option(
        name="timeout", field="timeout", check=_plain(check_timeout), default=DEFAULT_TIMEOUT,
        shown_type="number (seconds)", shown_default=f"`{DEFAULT_TIMEOUT:g}`",
        doc="how long a connection may take to connect, or stay silent, before the request fails (then retried).",
    ),
    Option(
        name="max-unpacked-size", field="max_unpacked_size", check=_plain(check_size),
        default=DEFAULT_MAX_UNPACKED_SIZE,
        shown_type="integer (bytes)", shown_default=f"`{DEFAULT_MAX_UNPACKED_SIZE}` (4 GiB)",
        doc=("extraction stops, refusing the archive, when the uncompressed archive (its members' data with their "
             'headers) grows past this, checked before each member is written (protects against decompression bombs; '
             'see [security.md](security.md)).'),
    ),
    Option(
        name="stdlib", field="stdlib", choices=STDLIB_PRESETS, default=DEFAULT_STDLIB,
        shown_type="string", shown_default=f'`"{DEFAULT_STDLIB}"`',
        doc=('how much of the runtime\'s standard library ships: `"full"` (everything in the asset), `"default"` '
             "(drops the test suites, `idlelib`, `turtledemo`, `ensurepip`, `lib2to3`, the runtime's own `pip` and "
             'bytecode the runtime never loads), `"minimal"` (also Tcl/Tk with `tkinter`, `pydoc_data`, `distutils` '
             'and the files only needed to compile C extensions). The exact list is in [Trimming the '
             'runtime](#trimming-the-runtime).'),
    ),
    Option(
        name="exclude", field="exclude", check=_plain(check_exclude), default=(),
        shown_type="array of strings", shown_default="`[]`",
        doc=("gitignore-style patterns (the syntax of Hatch's own `exclude`), relative to the artifact root, of files "
             'left out of the artifact, e.g. `"*.pyi"`, `"app/**/tests/"`, `"python/lib/python3.*/sqlite3/"`. A '
             'pattern starting with `!` keeps what an earlier one (or the `stdlib` preset) dropped. Applies to '
             "`python/` and `app/`, before bytecode is compiled: a pattern naming a module's `.py` file leaves the "
             'module out, its `.pyc` included. Launchers and the manifest are always kept, and a pattern that removes '
             "the runtime's interpreter is an error. The size table a build prints marks the distributions the "
             "scripts' code never imports (often `pip` and `setuptools`, declared by another distribution) and ends "
             'with the patterns that leave them out, e.g. `["app/pip/", "app/pip-26.0.dist-info/", "app/bin/pip"]`: '
             'check that nothing loads them by name or as a plugin, then copy the patterns here.'),
    ),
    Option(
        name="bytecode", field="bytecode", choices=BYTECODE_MODES, default=DEFAULT_BYTECODE,
        shown_type="string", shown_default=f'`"{DEFAULT_BYTECODE}"`',
        doc=('`"compile"`: `app/` ships sources and their `.pyc` (in `__pycache__/`), the runtime keeps the bytecode '
             'its asset ships. `"only"`: sourceless: every `.py` of `app/` and of the standard library is replaced by '
             'its `.pyc` (tracebacks still name the files, without source lines; code that reads its own source, such '
             'as `inspect.getsource`, cannot). `"none"`: no `.pyc` at all (smallest; every start compiles what it '
             'imports, and writes `__pycache__/` where the directory is writable).'),
    ),
    Option(
        name="archive-format", field="archive_format", choices=ARCHIVE_FORMATS, default=None,
        shown_type="string", shown_default='`"tar.gz"` (`"zip"` for Windows targets)',
        doc=('`"tar.gz"` (gzip level 6), `"tar.zst"` (zstd level 10 on every core: smaller and several times faster '
             'to write; unpack with `tar --zstd -xf` or `tar -xf` on GNU tar 1.31+), `"zip"`, or `"dir"` (a directory '
             '`<name>-<version>-<triple>/` in the output directory, replaced on each build, with the modes the '
             'archives record: `0755` for directories and executables, `0644` otherwise, never setuid/setgid or '
             'group/world-writable; no `SHA256SUMS` line, its SBOM is `<name>-<version>-<triple>.cdx.json`). Setting '
             'it applies to every target, Windows ones included.'),
    ),
    Option(
        name="pyapp", field="pyapp", check=_plain(check_pyapp), choices=PYAPP_MODES, default=DEFAULT_PYAPP,
        shown_type='`"auto"`, `true` or `false`', shown_default=f'`"{DEFAULT_PYAPP}"`',
        doc=("what `hatch build -t app` (or `-t binary`) does without `--hooks-only`, when Hatch's binary builder "
             'compiles PyApp with cargo: `"auto"` hands PyApp the artifact of cargo\'s target triple (the build '
             "machine's, or `CARGO_BUILD_TARGET`) when cargo is found, so the binary runs offline from its first "
             'start, and otherwise says once that only the archives were built; `true` requires cargo (an error '
             "before anything is built); `false` leaves Hatch's builder alone. See "
             '[distribution-forms.md](distribution-forms.md#pyapp-binaries).'),
    ),
    Option(
        name="wheel", field="wheel", check=_plain(check_bool), default=False,
        shown_type="boolean", shown_default="`false`",
        doc=('in `[tool.hatch.build.targets.wheel.hooks.pbs]`: `hatch build -t wheel` writes one platform wheel per '
             'target triple carrying the artifact, whose scripts run on the bundled runtime (see '
             '[distribution-forms.md](distribution-forms.md#runtime-wheels)). Ignored by other targets.'),
    ),
    Option(
        name="manylinux", field="floors.manylinux", check=_floor(MANYLINUX_FLOORS, "glibc"), choices=MANYLINUX_FLOORS,
        default=MANYLINUX_FLOOR,
        shown_type="string", shown_default='`"{}_{}"`'.format(*MANYLINUX_FLOOR),
        doc=('the oldest glibc the Linux gnu artifacts run on, as a PEP 600 `manylinux_X_Y` floor: one of `"2_17"`, '
             '`"2_28"`, `"2_31"` to `"2_40"` (the floors uv\'s `--python-platform` knows; `"2_17"` is '
             'python-build-standalone\'s own). Wheels are chosen for it (`manylinux_2_28` and older for `"2_28"`), '
             'and the audit refuses a binary needing a newer glibc. Many current releases (pyarrow, recent Pillow) '
             'ship only `manylinux_2_28` wheels. See [cross-platform.md](cross-platform.md#platform-floors).'),
    ),
    Option(
        name="musllinux", field="floors.musllinux", check=_floor(MUSLLINUX_FLOORS, "musl"), choices=MUSLLINUX_FLOORS,
        default=MUSLLINUX_FLOOR,
        shown_type="string", shown_default='`"{}_{}"`'.format(*MUSLLINUX_FLOOR),
        doc=('the oldest musl the Linux musl artifacts run on (PEP 656); `"1_2"` is the only value: '
             "python-build-standalone's musl runtimes need musl 1.2, and uv knows no newer musllinux platform."),
    ),
    Option(
        name="macos", field="floors.macos", check=_macos, default=floor_version(DEFAULT_MACOS_DEPLOYMENT_TARGET, "."),
        env=EnvOverride(ENV_MACOS, lambda value, where, project: _macos(value.strip(), where, project),
                        values_doc=("a macOS version as for `macos` (e.g. `12.0`), validated as `macos` is; blank is "
                                    "unset")),
        shown_type="string", shown_default=f'`"{DEFAULT_MACOS_DEPLOYMENT_TARGET}"`',
        doc=('the oldest macOS the macOS artifacts run on, from `"10.9"` on (`"14"` means `"14.0"`): wheels are '
             'chosen for it (uv is given it as `MACOSX_DEPLOYMENT_TARGET`), and the audit refuses a binary whose '
             'minimum macOS is newer. `MACOSX_DEPLOYMENT_TARGET` overrides it.'),
    ),
    Option(
        name="build-from-source", field="build_from_source", check=_plain(check_bool), default=False,
        shown_type="boolean", shown_default="`false`",
        doc=("`false`: only wheels are installed, for every target (uv's `--only-binary :all:`); a dependency without "
             'a wheel for the floor fails the build, naming the distribution, the triple, the accepted wheel tags and '
             'the floor option at which it has wheels (e.g. `set manylinux = "2_28"`), found by asking uv again with '
             "raised floors. `true`: for the build machine's own triple only, such a dependency is built from its "
             "source distribution by the target's runtime (`uv build --wheel`); the wheel is kept in the cache "
             "(`built-wheels/`, by the sdist's sha256) and reused by later builds, and the manifest names the sdist. "
             "Foreign triples never build from source. A wheel built here needs the build machine's glibc, so the "
             'audit refuses it unless `manylinux` is at least that. With a `requirements` file that is not a '
             '`pylock.toml`, uv builds such dependencies itself (not cached by hatch-pbs).'),
    ),
    Option(
        name="image", field="image",
        check=lambda value, where, project: check_image(value, where, project.project_scripts), default=None,
        shown_type=f"table ({', '.join(f'`{key}`' for key in IMAGE_KEYS)})", shown_default="none (no image)",
        doc=("`hatch build -t app --hooks-only` also writes `<name>-<version>-oci.tar`, an OCI image layout archive "
             "with one image per Linux target triple, without Docker. Keys: `base` (image reference, default "
             f'`"{DEFAULT_BASE_IMAGE}"`), `prefix` (default `"/opt/<name>"`), `entrypoint` (a script of option '
             "`scripts`, default the first), `workdir` (default the prefix), `user` (default the base image's), "
             "`env` and `labels` (tables of strings). See [containers.md](containers.md)."),
    ),
    Option(
        name="onefile", field="onefile", check=_plain(check_bool), default=False,
        shown_type="boolean", shown_default="`false`",
        doc=("`hatch build -t app` also writes one single-file executable per launcher script (option `scripts`) "
             "and target triple beside the archives: `<script>-<version>-<triple>` (`.exe` on Windows), a small "
             "bootstrap carrying the artifact, which it unpacks into a per-user cache on its first start "
             "(`HATCH_PBS_ONEFILE_CACHE` overrides the cache) and runs from there. Every target needs a bootstrap: "
             "x86_64/aarch64 Linux (gnu, musl) and macOS, x86_64/aarch64/i686 Windows. See "
             "[distribution-forms.md](distribution-forms.md#single-file-executables)."),
    ),
)

#: The option names, in declaration order.
OPTIONS: tuple[str, ...] = tuple(option.name for option in OPTION_DECLARATIONS)
