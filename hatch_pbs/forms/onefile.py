"""Single-file executables (option ``onefile``): for each artifact and each launcher script,
``<script>-<version>-<triple>`` (``.exe`` on Windows) beside the archives, written by :class:`OnefileWriter`, a
:data:`~hatch_pbs.pipeline.Finisher`, so they are published with the archives (all or nothing) and listed in
``SHA256SUMS``.

Each one is the target's prebuilt bootstrap (:mod:`hatch_pbs.onefile.bootstraps`; the Windows GUI-subsystem one
for a ``[project.gui-scripts]`` entry) followed by the artifact as a ``.tar.zst`` payload
(:func:`hatch_pbs.onefile.payload.write_onefile`). The payload is the ``.tar.zst`` archive itself with
``archive-format = "tar.zst"``; a ``.tar.gz`` archive is recompressed (the same tar stream), a ``.zip`` archive
(Windows by default) is rewritten as a tar with its members' modes and times, and a directory
(``archive-format = "dir"``) is packed. Every payload is zstd at the archive level
(:data:`~hatch_pbs.artifact.pack.ZSTD_LEVEL`), whose 4 MiB window the bootstrap's 8 MiB decoder window holds.
"""

from __future__ import annotations

import calendar
import gzip
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

import zstandard

from hatch_pbs.artifact.archive import archive_format_of
from hatch_pbs.artifact.pack import ZSTD_LEVEL, ZSTD_THREADS, pack_tree
from hatch_pbs.errors import ConfigError, PackError
from hatch_pbs.forms import FormContext
from hatch_pbs.onefile.bootstraps import bootstrap_path
from hatch_pbs.onefile.payload import write_onefile
from hatch_pbs.pipeline import BuiltArtifact
from hatch_pbs.release.triples import parse_triple

#: The largest zstd window (bytes) the bootstrap decodes (``bootstrap/README.md``).
WINDOW_SIZE_MAX = 8 << 20
#: The longest zstd frame header in bytes (RFC 8878 section 3.1.1.1: magic 4, descriptor 1, window 1,
#: dictionary id up to 4, content size up to 8).
_FRAME_HEADER_SIZE_MAX = 18


def onefile_name(script: str, version: str, triple: str) -> str:
    """``<script>-<version>-<triple>``, with ``.exe`` for a Windows ``triple``."""
    return f"{script}-{version}-{triple}" + (".exe" if parse_triple(triple).is_windows else "")


def check_onefile_names(context: FormContext) -> None:
    """Refuse, before anything is built, a script whose executable would take the name of an artifact directory
    (``archive-format = "dir"`` writes ``<name>-<version>-<triple>/``, which a script named like the project
    would collide with).

    Raises:
        ConfigError: naming options ``onefile``, ``archive-format`` and the script.
    """
    config = context.config
    if config.onefile and config.archive_format == "dir" and context.name in config.scripts:
        raise ConfigError([f"Options `onefile` and `archive-format = \"dir\"` of build hook `pbs` would both write "
                           f"{context.name}-{context.version}-<triple> (the script {context.name!r} and the artifact "
                           f"directory); choose another archive format or leave the script out of option `scripts`"])


class OnefileWriter:
    """The :data:`~hatch_pbs.pipeline.Finisher` writing the executables; :attr:`written` holds ``(file name, size
    in bytes)`` of each, in target then script order, once it ran."""

    def __init__(self, context: FormContext) -> None:
        self.context = context
        self.written: list[tuple[str, int]] = []

    def __call__(self, outputs: Path, built: list[BuiltArtifact], staging: Path) -> list[Path]:
        work = staging / "onefile"
        work.mkdir(exist_ok=True)
        paths = []
        for artifact in built:
            payload = payload_archive(artifact.path, work)
            for script in self.context.config.scripts:
                destination = outputs / onefile_name(script, self.context.version, artifact.triple)
                windows = parse_triple(artifact.triple).is_windows
                bootstrap = bootstrap_path(artifact.triple, gui=windows and script in self.context.gui_scripts)
                size = write_onefile(bootstrap, payload, f"bin/{script}.exe" if windows else f"bin/{script}",
                                     destination)
                self.written.append((destination.name, size))
                paths.append(destination)
            if payload.parent == work:
                payload.unlink()
        return paths


def payload_archive(artifact: Path, work: Path) -> Path:
    """The ``.tar.zst`` payload of ``artifact`` (an archive or an artifact directory), members below its top
    directory: ``artifact`` itself when it is a ``.tar.zst``, else a new file in ``work``.

    Raises:
        PackError: ``artifact`` cannot be read or converted (nothing is left in ``work``), or its zstd frames need
            a window over :data:`WINDOW_SIZE_MAX` bytes.
    """
    if artifact.is_dir():
        payload = work / f"{artifact.name}.tar.zst"
        pack_tree(artifact, payload)
        _check_window(payload)
        return payload
    chosen = archive_format_of(artifact.name)
    if chosen == "tar.zst":
        _check_window(artifact)
        return artifact
    payload = work / (artifact.name.removesuffix(".tar.gz").removesuffix(".zip") + ".tar.zst")
    try:
        with open(payload, "wb") as out, _compressor().stream_writer(out, closefd=False) as writer:
            if chosen == "tar.gz":
                with gzip.open(artifact, "rb") as tar_stream:
                    shutil.copyfileobj(tar_stream, writer, 1 << 20)
            else:
                _zip_as_tar(artifact, writer)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError) as error:
        payload.unlink(missing_ok=True)
        raise PackError(f"cannot make the onefile payload of {artifact}: {error}") from error
    _check_window(payload)
    return payload


def _compressor() -> zstandard.ZstdCompressor:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=ZSTD_THREADS, write_checksum=True)


def _zip_as_tar(archive: Path, writer: zstandard.ZstdCompressionWriter) -> None:
    """Write the members of the zip ``archive`` (as :func:`hatch_pbs.artifact.archive.zip_member` records them:
    Unix modes, UTC times, symbolic links as their target) as a PAX tar stream into ``writer``."""
    with zipfile.ZipFile(archive) as source, tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in source.infolist():
            mode = entry.external_attr >> 16
            member = tarfile.TarInfo(entry.filename.rstrip("/"))
            member.mtime = calendar.timegm((*entry.date_time, 0, 0, 0))
            if entry.is_dir():
                member.type, member.mode = tarfile.DIRTYPE, stat.S_IMODE(mode) or 0o755
                tar.addfile(member)
            elif stat.S_ISLNK(mode):
                member.type, member.mode = tarfile.SYMTYPE, 0o777  # as tar records a link
                member.linkname = source.read(entry).decode("utf-8")
                tar.addfile(member)
            else:
                member.size, member.mode = entry.file_size, stat.S_IMODE(mode) or 0o644
                with source.open(entry) as content:
                    tar.addfile(member, content)


def _check_window(archive: Path) -> None:
    with open(archive, "rb") as stream:
        head = stream.read(_FRAME_HEADER_SIZE_MAX)
    try:
        window = zstandard.get_frame_parameters(head).window_size
    except zstandard.ZstdError as error:
        raise PackError(f"{archive} is not a zstd archive ({error})") from error
    if window > WINDOW_SIZE_MAX:
        raise PackError(f"{archive} needs a zstd window of {window} bytes; the onefile bootstrap decodes at most "
                        f"{WINDOW_SIZE_MAX}")
