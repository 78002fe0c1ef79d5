"""Image references (``[registry/]repository[:tag][@digest]``) parsed and normalised as Docker does.

Grammar and normalisation: the distribution project's reference package
(https://github.com/distribution/reference, ``reference.go`` and ``normalize.go``): a first path component is a
registry only if it contains ``.`` or ``:`` or is ``localhost``; otherwise the registry is ``docker.io``, where a
one-component repository is in ``library/``. A reference with neither tag nor digest means the tag ``latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from hatch_pbs.errors import RegistryError

#: The registry a reference without one names, and the host its API is served from (Docker Hub).
DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
#: Docker Hub's legacy name, normalised to :data:`DOCKER_HUB`.
DOCKER_HUB_LEGACY = "index.docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REGISTRY = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                       r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")
#: The longest repository name the grammar allows, in characters.
MAX_REPOSITORY_LENGTH = 255


@dataclass(frozen=True)
class ImageReference:
    """A normalised image reference.

    Attributes:
        registry: the registry's host (``docker.io``, ``ghcr.io``, ``127.0.0.1:5000``), with its port if any.
        repository: the repository path (``library/debian``).
        tag: the tag, or ``None`` when only a digest was given.
        digest: ``sha256:<64 hex digits>``, or ``None``; when both are given the digest is what is pulled.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        """Parse ``text`` (``debian``, ``debian:bookworm-slim``, ``ghcr.io/o/r@sha256:...``, ``name:tag@digest``).

        Raises:
            RegistryError: the reference is malformed; the message names it and the part that is wrong.
        """
        original = text
        text = text.strip()
        if not text:
            raise RegistryError("invalid image reference '': it is empty")
        name, _, digest = text.partition("@")
        if digest and not _DIGEST.fullmatch(digest):
            raise RegistryError(f"invalid image reference {original!r}: the digest {digest!r} is not "
                                f"sha256:<64 lowercase hex digits>")
        tag = None
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1:]
            if not _TAG.fullmatch(tag):
                raise RegistryError(f"invalid image reference {original!r}: the tag {tag!r} must match "
                                    f"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
        registry, repository = _split_registry(name, original)
        if tag is None and not digest:
            tag = DEFAULT_TAG
        return cls(registry, repository, tag, digest or None)

    @property
    def api_host(self) -> str:
        """The host (and port) serving the registry API: ``registry-1.docker.io`` for ``docker.io``."""
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def pull_reference(self) -> str:
        """What a manifest is fetched by: the digest when there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> ImageReference:
        """The same repository with ``tag`` and no digest.

        Raises:
            RegistryError: ``tag`` is not a valid tag.
        """
        if not _TAG.fullmatch(tag):
            raise RegistryError(f"invalid tag {tag!r} for {self.name}: a tag must match "
                                f"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> ImageReference:
        """The same repository and tag, pinned to ``digest`` (``sha256:...``).

        Raises:
            RegistryError: ``digest`` is not ``sha256:<64 hex digits>``.
        """
        if not _DIGEST.fullmatch(digest):
            raise RegistryError(f"invalid digest {digest!r} for {self.name}: expected sha256:<64 lowercase hex "
                                f"digits>")
        return replace(self, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _split_registry(name: str, original: str) -> tuple[str, str]:
    """``(registry, repository)`` of a reference's name part (no tag, no digest), normalised and validated."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        registry, repository = first, rest
        if not _REGISTRY.fullmatch(registry):
            raise RegistryError(f"invalid image reference {original!r}: the registry {registry!r} is not a "
                                f"host name or address with an optional port")
        if registry == DOCKER_HUB_LEGACY:
            registry = DOCKER_HUB
    else:
        registry, repository = DOCKER_HUB, name
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not repository:
        raise RegistryError(f"invalid image reference {original!r}: the repository name is empty")
    for component in repository.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise RegistryError(f"invalid image reference {original!r}: the repository component {component!r} "
                                f"must be lowercase letters and digits, separated by '.', '_', '__' or '-'")
    if len(repository) > MAX_REPOSITORY_LENGTH:
        raise RegistryError(f"invalid image reference {original!r}: the repository name is longer than "
                            f"{MAX_REPOSITORY_LENGTH} characters")
    return registry, repository


__all__ = ["DEFAULT_TAG", "DOCKER_HUB", "DOCKER_HUB_API_HOST", "ImageReference"]
