"""The one error family of hatch-pbs.

Every failure a user can cause or fix (bad configuration, a release without the requested asset, a download that
fails verification, a hostile archive, an installer error) is raised as a subclass of :class:`HatchPbsError`.
Its message is complete on its own: the CLI prints it as a single ``error:`` line and the build hook shows it
without a traceback. Anything else escaping the pipeline is a bug in hatch-pbs.
"""

from __future__ import annotations


class HatchPbsError(Exception):
    """Base class of every error hatch-pbs reports to its user."""


class ConfigError(HatchPbsError):
    """The ``[tool.hatch.build.hooks.pbs]`` table (or a CLI option / environment override) is invalid.

    ``problems`` holds one message per invalid option; ``str()`` joins them, one per line.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class AssetNameError(HatchPbsError):
    """A file name does not follow the python-build-standalone asset naming scheme."""


class ResolveError(HatchPbsError):
    """The release has no asset for the requested python version, target triple and flavor,
    or its catalogue (``SHA256SUMS`` / ``latest-release.json``) is missing or malformed."""


class DownloadError(HatchPbsError):
    """A request failed (HTTP status, connection, offline mode) after the allowed retries."""


class ChecksumError(DownloadError):
    """Downloaded bytes do not match the sha256 listed in the release's ``SHA256SUMS``."""


class OfflineError(DownloadError):
    """Offline mode (``HATCH_PBS_OFFLINE=1``) forbids the request and the cache does not have the file."""


class ExtractError(HatchPbsError):
    """An archive member is unsafe (escapes the destination, device file, ...) or the archive is corrupt."""


class RelocateError(HatchPbsError):
    """A binary or script of the runtime could not be made relocatable."""


class InstallError(HatchPbsError):
    """Building the project's wheel or installing it and its dependencies into the artifact failed."""


class PackError(HatchPbsError):
    """Writing the release archive or its checksum file failed."""


class AuditError(HatchPbsError):
    """The assembled artifact contains binaries that cannot run on its target (wrong architecture or format,
    extension modules a static runtime cannot load)."""


class SigningError(RelocateError):
    """A Mach-O file could not be given an ad-hoc code signature (universal or 32-bit file, no room for the
    signature, malformed load commands)."""


class LockError(HatchPbsError):
    """The lock file (``pbs.lock``) is malformed, does not lock a configured target triple, or differs from what
    the release's catalogue or the configuration gives."""


class DamagedCacheError(HatchPbsError):
    """A derived cache entry (a prepared runtime, a compressed runtime part, cached bytecode) does not hold what its
    record says it must (a file missing, of another size, or with other bytes). The build discards the entry and
    makes it again; ``hatch-pbs cache verify`` lists such entries and ``hatch-pbs cache clean`` removes them."""
