"""Validate the ``[tool.hatch.build.hooks.pbs]`` table into a :class:`~hatch_pbs.config.options.HookConfig`: a loop
over :data:`~hatch_pbs.config.options.OPTION_DECLARATIONS` (each option's check, then its environment override),
then the checks that concern several options or the project (unknown keys, ``python-version`` against
``requires-python``, the entry points of the selected scripts).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from hatch_pbs.config.checks import did_you_mean, option_where
from hatch_pbs.config.image import ImageOptions
from hatch_pbs.config.options import (
    HATCHLING_HOOK_KEYS,
    OPTION_DECLARATIONS,
    OPTIONS,
    HookConfig,
    Option,
    ProjectContext,
)
from hatch_pbs.errors import ConfigError
from hatch_pbs.onefile.bootstraps import BOOTSTRAP_TRIPLES, has_bootstrap
from hatch_pbs.release.triples import PlatformFloors, host_triple, parse_triple

#: Problems are listed in the order the options were checked in before they were declared in one place (the
#: messages' order is part of the behaviour): the options checked first, then the rest in declaration order.
_CHECKED_FIRST = ("python-version", "release", "flavor", "mirror", "targets", "scripts", "cache-dir")
#: Likewise for the environment overrides: ``HATCH_PBS_MIRROR`` first, then the rest in declaration order.
_ENV_CHECKED_FIRST = ("mirror",)

#: ``module:attr`` with dotted identifiers, optional extras (entry points specification).
_ENTRY_POINT_RE = re.compile(r"^\s*[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\s*:\s*[A-Za-z_]\w*(\.[A-Za-z_]\w*)*"
                             r"\s*(\[[^\]]*\])?\s*$")


def parse_hook_config(
    raw: Mapping[str, Any],
    *,
    project_scripts: Mapping[str, str],
    root: Path,
    environ: Mapping[str, str] | None = None,
    host: Callable[[], str] = host_triple,
    requires_python: SpecifierSet | None = None,
) -> HookConfig:
    """Validate the hook table.

    Args:
        raw: the ``[tool.hatch.build.hooks.pbs]`` (or target-specific) table as hatchling passes it.
        project_scripts: every ``[project.scripts]`` and ``[project.gui-scripts]`` entry, name -> entry point.
        root: the project root; a relative ``cache-dir`` is relative to it.
        environ: environment for the ``HATCH_PBS_*`` overrides (default ``os.environ``).
        host: returns the build machine's triple (a parameter so tests can pin it).
        requires_python: the project's ``requires-python``; a ``python-version`` it excludes is a problem.

    Raises:
        ConfigError: one or more options are invalid (an entry point of a selected script that is not
            ``module:attr`` included); every problem is listed: unknown keys first, then the options in
            declaration order, then the environment overrides, then the checks across options.
    """
    environ = os.environ if environ is None else environ
    project = ProjectContext(root=root, project_scripts=project_scripts, host=host)
    problems = _unknown_option_problems(raw)
    values = {option.name: _take(option, raw, project, problems) for option in _in_order(_CHECKED_FIRST)}
    for option in _in_order(_ENV_CHECKED_FIRST):
        if option.env is not None and (text := option.env.value_in(environ)) is not None:
            try:
                values[option.name] = option.env.check(text, f"Environment variable `{option.env.variable}`",
                                                       project)
            except ValueError as error:
                problems.append(str(error))
    if values["python-version"] is not None and requires_python is not None:
        problems.extend(_requires_python_conflict(values["python-version"], requires_python))
    problems.extend(_entry_point_problems(values["scripts"], project_scripts))
    problems.extend(_image_problems(values["image"], values["scripts"], values["targets"]))
    problems.extend(_onefile_problems(values["onefile"], values["scripts"], values["targets"]))
    if problems:
        raise ConfigError(problems)
    return _hook_config(values)


def requires_python_specifier(text: str | None) -> SpecifierSet | None:
    """The project's ``requires-python`` (the text hatchling's metadata resolves, PEP 621) as a specifier set;
    ``None`` when it is empty or not valid (hatchling itself reports an invalid one)."""
    if not text:
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None


def _in_order(first: tuple[str, ...]) -> list[Option]:
    """The declarations, the options named in ``first`` first (in that order), the others in declaration order."""
    rank = {name: index for index, name in enumerate(first)}
    return sorted(OPTION_DECLARATIONS, key=lambda option: rank.get(option.name, len(first)))


def _take(option: Option, raw: Mapping[str, Any], project: ProjectContext, problems: list[str]) -> Any:
    """The field's value of ``option`` in ``raw``, or its default; a problem found is appended to ``problems``
    (an invalid value is replaced by the default, without its problems, so the later checks can run)."""
    where = option_where(option.name)
    if option.name not in raw:
        try:
            return option.default_for(project, where)
        except ValueError as error:
            problems.append(str(error))
            return option.default
    try:
        return option.validate(raw[option.name], where, project)
    except ValueError as error:
        problems.extend(str(error).splitlines())  # a check may find several problems, one per line
    try:
        return option.default_for(project, where)
    except ValueError:
        return option.default


def _unknown_option_problems(raw: Mapping[str, Any]) -> list[str]:
    """One problem per key of ``raw`` that is neither an option nor hatchling's, sorted, with a "did you mean"."""
    problems = []
    for name in sorted(set(raw) - set(OPTIONS) - HATCHLING_HOOK_KEYS):
        close = [option for option in OPTIONS if option.replace("-", "") == name.replace("-", "").replace("_", "")]
        hint = f' (did you mean "{close[0]}"?)' if close else did_you_mean(name.replace("_", "-"), OPTIONS)
        problems.append(f"Unknown option `{name}` for build hook `pbs`{hint}; known options: {', '.join(OPTIONS)}")
    return problems


def _hook_config(values: Mapping[str, Any]) -> HookConfig:
    """The :class:`HookConfig` of the options' values (option name -> field value); a field ``"floors.macos"``
    is attribute ``macos`` of ``floors`` (the only field options share)."""
    fields: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    for option in OPTION_DECLARATIONS:
        _, _, attribute = option.field.partition("floors.")
        if attribute:
            floors[attribute] = values[option.name]
        else:
            fields[option.field] = values[option.name]
    return HookConfig(**fields, floors=PlatformFloors(**floors))


def _requires_python_conflict(python_version: str, requires_python: SpecifierSet) -> list[str]:
    """A problem when no CPython that ``python-version`` selects satisfies ``requires-python``: ``"3.X"`` selects
    any ``3.X.Y`` (final releases), ``"3.X.Y"`` exactly that version."""
    if python_version.count(".") >= 2:
        candidates = [python_version]
    else:
        candidates = [f"{python_version}.{patch}" for patch in range(100)]
    if any(requires_python.contains(candidate, prereleases=True) for candidate in candidates):
        return []
    return [(f'{option_where("python-version")} is "{python_version}", but the project\'s `requires-python` is '
             f'"{requires_python}", which no CPython {python_version} satisfies; change one of the two')]


def _image_problems(image: ImageOptions | None, scripts: tuple[str, ...], targets: tuple[str, ...] | None) -> list[str]:
    """Problems of option ``image`` with the others: ``image.entrypoint`` naming a script that gets no launcher
    (not in option ``scripts``), or ``targets`` without a Linux triple (images are made of those only)."""
    if image is None:
        return []
    problems = []
    if image.entrypoint is not None and image.entrypoint not in scripts:
        problems.append(f"{option_where('image')}: `entrypoint` is {image.entrypoint!r}, which option `scripts` "
                        f"leaves out (it gets no launcher); add it to `scripts` or choose one of: "
                        f"{', '.join(scripts) or 'none'}")
    if targets is not None and not any(parse_triple(triple).os == "linux" for triple in targets):
        problems.append(f"{option_where('image')} makes container images of the Linux target triples, but "
                        f"`targets` has none ({', '.join(targets)}); add one such as \"x86_64-unknown-linux-gnu\" "
                        f"or \"aarch64-unknown-linux-gnu\"")
    return problems


def _onefile_problems(onefile: bool, scripts: tuple[str, ...], targets: tuple[str, ...] | None) -> list[str]:
    """Problems of option ``onefile`` with the others: no script to make an executable of, or a target triple
    without a bootstrap (:data:`~hatch_pbs.onefile.bootstraps.BOOTSTRAP_TRIPLES`)."""
    if not onefile:
        return []
    problems = []
    if not scripts:
        problems.append(f"{option_where('onefile')} makes one executable per launcher script, but there is none: "
                        f"add a [project.scripts] entry (and list it in option `scripts` if that is set)")
    without = [triple for triple in targets or () if not has_bootstrap(triple)]
    if without:
        problems.append(f"{option_where('onefile')}: no single-file bootstrap exists for {', '.join(without)}; "
                        f"remove {'it' if len(without) == 1 else 'them'} from `targets` or set `onefile = false` "
                        f"(bootstraps exist for: {', '.join(BOOTSTRAP_TRIPLES)} and their CPU-level variants)")
    return problems


def _entry_point_problems(scripts: tuple[str, ...], project_scripts: Mapping[str, str]) -> list[str]:
    """One problem per selected script whose entry point is not ``module:attr`` (the object reference of the
    entry points specification, https://packaging.python.org/en/latest/specifications/entry-points/; a launcher
    imports ``module`` and calls ``attr``)."""
    return [f"Entry point of script `{name}` ({project_scripts[name]!r} in [project.scripts] or "
            f"[project.gui-scripts]) must be \"module:attr\" such as \"my_app.cli:main\" for build hook `pbs` to "
            f"write its launcher"
            for name in scripts if name in project_scripts and not _ENTRY_POINT_RE.fullmatch(project_scripts[name])]
