"""The container image form (option ``image``): the release archives, as :class:`~hatch_pbs.forms.archive.ArchiveForm`
writes them, and beside them ``<name>-<version>-oci.tar``, an OCI image layout archive with one image per Linux
target triple (:mod:`hatch_pbs.oci.build`) on the base image, which is pulled before anything is built; published
with the archives (all or nothing) and listed in ``SHA256SUMS``. Targets of other systems get archives only, said
in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatch_pbs import interrupts
from hatch_pbs.artifact.pack import source_date_epoch
from hatch_pbs.artifact.sbom import sbom_path
from hatch_pbs.forms import FormContext
from hatch_pbs.forms.archive import ArchiveForm, build_archives
from hatch_pbs.oci.build import BaseImages, BuiltImage, ImageProject, ImageTarget, build_image, layout_name, pull_base
from hatch_pbs.pipeline import BuiltArtifact
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.triples import parse_triple


class ImageForm(ArchiveForm):
    """The archives, and the image layout archive of their Linux ones, in ``context.output_dir``."""

    def __init__(self, context: FormContext) -> None:
        super().__init__(context)
        self.image: BuiltImage | None = None
        self.base: BaseImages = {}

    def initialize(self, build_data: dict[str, Any]) -> None:  # noqa: ARG002 - the image needs no build data
        config = self.context.config
        assert config.image is not None  # select_form chose this form for option `image`
        linux = [triple for triple in config.targets if parse_triple(triple).os == "linux"]
        with interrupts.scope():
            self.base = pull_base(config.image, linux, Cache(config.cache_dir), offline=config.offline,
                                  timeout=config.timeout, report=self._report)
            self.built = build_archives(self.context, self.context.output_dir, finish=self._write_image,
                                        onefile=True)
        assert self.image is not None  # _write_image ran before the outputs were published
        self.context.success(f"{self.context.output_dir / self.image.path.name} ({self.image.size / 1e6:.1f} MB, "
                             f"{len(self.image.images)} platform(s), tag {self.image.tag}, index {self.image.digest})")

    def _write_image(self, outputs: Path, built: list[BuiltArtifact], staging: Path) -> list[Path]:
        """The :data:`~hatch_pbs.pipeline.Finisher` writing the layout archive in ``outputs``."""
        context, config = self.context, self.context.config
        assert config.image is not None  # select_form chose this form for option `image`
        linux = [artifact for artifact in built if parse_triple(artifact.triple).os == "linux"]
        others = [artifact.triple for artifact in built if artifact not in linux]
        if others:
            context.info(f"hatch-pbs: no image for {', '.join(others)} (images are made for Linux targets)")
        targets = [ImageTarget(artifact.triple, artifact.path,
                               sbom_path(artifact.path) if sbom_path(artifact.path).is_file() else None,
                               artifact.interpreter) for artifact in linux]
        project = ImageProject(name=context.name, version=context.version, description=context.description,
                               license_expression=context.license_expression, urls=context.urls,
                               scripts=config.scripts)
        work = staging / "image"
        work.mkdir(exist_ok=True)
        self.image = build_image(targets, project, config.image, self.base, Cache(config.cache_dir),
                                 outputs / layout_name(context.name, context.version), work,
                                 epoch=source_date_epoch(context.root), report=self._report,
                                 warn=lambda line: context.warning(f"hatch-pbs: {line}"))
        return [self.image.path]

    def _report(self, line: str) -> None:
        self.context.info(f"hatch-pbs: {line}")
