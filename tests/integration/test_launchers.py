"""Launchers (hatch_pbs.app.launchers) run on a real relocated runtime: the fake release's install_only tree,
extracted and relocated by hatch-pbs, with a small application in ``app/`` made visible by the ``.pth`` file of
hatch_pbs.runtime.site.write_app_pth."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from pbs_release import FakeRelease
from runtime_tree import (
    INTERPRETER,
    SITE_PACKAGES,
    XY,
    cannot_hide_directories,
    extract_install_only,
    relocate,
    run_hidden,
)

from hatch_pbs.app.launchers import bootstrap_code, write_launcher
from hatch_pbs.errors import InstallError
from hatch_pbs.runtime.site import APP_PTH_NAME, write_app_pth

REPORT = '''\
import json, os, sys


def report(entry):
    """Print what the process sees as JSON and return the exit status asked for in DEMO_EXIT."""
    import argparse, json as json_module
    print(json.dumps({
        "entry": entry,
        "prog": argparse.ArgumentParser().prog,
        "argv": sys.argv,
        "path": sys.path,
        "isolated": sys.flags.isolated,
        "ignore_environment": sys.flags.ignore_environment,
        "no_user_site": sys.flags.no_user_site,
        "prefix": sys.prefix,
        "executable": sys.executable,
        "json_file": json_module.__file__,
        "package_file": __file__,
        "suspicious_modules": sorted(name for name in sys.modules
                                     if name in ("sitecustomize", "usercustomize") or "evil" in name),
    }))
    status = os.environ.get("DEMO_EXIT", "0")
    if status == "raise":
        raise RuntimeError("demo failure")
    return int(status)


def main():
    return report("main")


class cli:
    @staticmethod
    def run():
        return report("cli.run")
'''

APP_FILES = {
    "demo_pkg/__init__.py": REPORT,
    "demo_pkg/__main__.py": ("import sys\nfrom demo_pkg import report\n"
                             "if __name__ == '__main__' and sys.modules['__main__'].__file__ == __file__:\n"
                             "    sys.exit(report('__main__'))\n"),
    "demo_pkg/sub.py": "from demo_pkg import report\n\n\ndef main():\n    return report('sub.main')\n",
}

LAUNCHERS = {
    "demo": "demo_pkg:main",
    "demo-attr": "demo_pkg:cli.run",
    "demo-module": "demo_pkg",
    "demo-sub": "demo_pkg.sub:main [extra]",
}

# Module names an attacker would plant: a stdlib module the app imports, the app's own package, the hooks `site`
# imports at start-up, and the module the launcher's bootstrap uses.
PLANTED = ("json", "demo_pkg", "sitecustomize", "usercustomize", "runpy", "evil_module")


@dataclass
class Artifact:
    root: Path
    markers: Path
    """Planted modules create a file here when imported; it must stay empty."""

    def launcher(self, name: str = "demo") -> Path:
        return self.root / "bin" / name

    def assert_no_planted_code_ran(self) -> None:
        assert sorted(path.name for path in self.markers.iterdir()) == []


def plant(directory: Path, markers: Path) -> None:
    """Write modules under the PLANTED names into ``directory`` that leave a marker file when imported."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in PLANTED:
        body = (f"import pathlib\npathlib.Path({str(markers)!r}, {name!r} + '-' + __file__.replace('/', '_'))"
                f".touch()\nprint('PLANTED {name} IMPORTED')\n")
        (directory / f"{name}.py").write_text(body, encoding="utf-8")
    (directory / "evil.pth").write_text(
        f"import pathlib; pathlib.Path({str(markers)!r}, 'pth-' + {str(directory).replace('/', '_')!r}).touch()\n",
        encoding="utf-8")


@pytest.fixture(scope="module")
def artifact(fake_release: FakeRelease, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    base = tmp_path_factory.mktemp("launchers")
    # A space in the artifact's path: every path the launcher builds must be quoted.
    root = extract_install_only(fake_release, base / "unpacked here" / "demo-1.0")
    for relative, text in APP_FILES.items():
        path = root / "app" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    pth = write_app_pth(root / SITE_PACKAGES)
    assert pth.name == APP_PTH_NAME
    for name, entry_point in LAUNCHERS.items():
        launcher = write_launcher(root / "bin", name, entry_point, INTERPRETER)
        assert launcher == root / "bin" / name
    relocate(root)
    markers = base / "markers"
    markers.mkdir()
    return Artifact(root, markers)


def clean_env(**extra: str) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/root")}
    env.update(extra)
    return env


def run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None,
        expect: int = 0) -> tuple[dict, subprocess.CompletedProcess[str]]:
    proc = subprocess.run(command, cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, check=False)
    assert proc.returncode == expect, (proc.returncode, proc.stdout, proc.stderr)
    assert "PLANTED" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0]), proc


def assert_only_artifact_paths(artifact: Artifact, seen: dict) -> None:
    assert seen["isolated"] == 1
    assert seen["ignore_environment"] == 1 and seen["no_user_site"] == 1
    assert seen["prefix"] == f"{artifact.root}/python"
    assert seen["json_file"] == f"{artifact.root}/python/lib/python{XY}/json/__init__.py"
    assert seen["package_file"].startswith(f"{artifact.root}/app/demo_pkg/")
    assert seen["suspicious_modules"] == []
    for entry in seen["path"]:
        assert entry.startswith(f"{artifact.root}/"), f"sys.path entry {entry!r} is outside the artifact"
    assert f"{artifact.root}/app" in seen["path"]
    artifact.assert_no_planted_code_ran()


ARGUMENTS = [
    "plain",
    "with space",
    "  leading and trailing  ",
    "",
    "it's",
    '"double"',
    "back\\slash",
    "$HOME",
    "${HOME}",
    "$(touch pwned)",
    "`touch pwned`",
    "*",
    "?",
    "[a-z]",
    "~",
    "line one\nline two",
    "tab\there",
    "-c",
    "--",
    "-I",
    "; exit 7",
    "| cat",
    "ünïcödé ✓",
    "",
]


def available_shells() -> list[str]:
    return [shell for shell in ("sh", "dash", "bash", "busybox") if shutil.which(shell)]


def test_launcher_is_valid_posix_sh(artifact: Artifact) -> None:
    for name in LAUNCHERS:
        launcher = artifact.launcher(name)
        assert os.access(launcher, os.X_OK)
        assert launcher.read_text().startswith("#!/bin/sh\n")
        subprocess.run(["sh", "-n", str(launcher)], check=True)


def test_arguments_pass_through_unchanged(artifact: Artifact, tmp_path: Path) -> None:
    (tmp_path / "a-file-for-the-glob").touch()
    seen, _ = run([str(artifact.launcher()), *ARGUMENTS], cwd=tmp_path)
    assert seen["entry"] == "main"
    assert seen["argv"] == [str(artifact.launcher()), *ARGUMENTS]
    assert not (tmp_path / "pwned").exists()
    assert_only_artifact_paths(artifact, seen)


@pytest.mark.parametrize("shell", available_shells())
def test_arguments_pass_through_under_each_shell(shell: str, artifact: Artifact, tmp_path: Path) -> None:
    command = [shell, "sh", str(artifact.launcher()), *ARGUMENTS] if shell == "busybox" else \
        [shell, str(artifact.launcher()), *ARGUMENTS]
    seen, _ = run(command, cwd=tmp_path)
    assert seen["argv"] == [str(artifact.launcher()), *ARGUMENTS]
    assert not (tmp_path / "pwned").exists()


def test_no_arguments(artifact: Artifact, tmp_path: Path) -> None:
    seen, _ = run([str(artifact.launcher())], cwd=tmp_path)
    assert seen["argv"] == [str(artifact.launcher())]


@pytest.mark.parametrize("status", [0, 1, 3, 255])
def test_exit_status_propagates(status: int, artifact: Artifact, tmp_path: Path) -> None:
    seen, _ = run([str(artifact.launcher())], cwd=tmp_path, env=clean_env(DEMO_EXIT=str(status)), expect=status)
    assert seen["entry"] == "main"


def test_uncaught_exception_exits_1_with_traceback(artifact: Artifact, tmp_path: Path) -> None:
    _, proc = run([str(artifact.launcher())], cwd=tmp_path, env=clean_env(DEMO_EXIT="raise"), expect=1)
    assert "RuntimeError: demo failure" in proc.stderr


@pytest.mark.parametrize(("name", "entry", "status"), [
    ("demo-attr", "cli.run", 4), ("demo-module", "__main__", 5), ("demo-sub", "sub.main", 6)])
def test_entry_point_forms(name: str, entry: str, status: int, artifact: Artifact, tmp_path: Path) -> None:
    seen, _ = run([str(artifact.launcher(name)), "x y", ""], cwd=tmp_path, env=clean_env(DEMO_EXIT=str(status)),
                  expect=status)
    assert seen["entry"] == entry
    assert seen["argv"] == [str(artifact.launcher(name)), "x y", ""]
    assert seen["prog"] == name
    assert_only_artifact_paths(artifact, seen)


def test_invoked_through_symlinks_from_other_directories(artifact: Artifact, tmp_path: Path) -> None:
    elsewhere = tmp_path / "usr local" / "bin"
    elsewhere.mkdir(parents=True)
    absolute = elsewhere / "demo-abs"
    absolute.symlink_to(artifact.launcher())
    # A chain of relative links: links/hop -> ../chain/hop2 -> <relative path to bin/demo>.
    (tmp_path / "links").mkdir()
    (tmp_path / "chain").mkdir()
    (tmp_path / "chain" / "hop2").symlink_to(os.path.relpath(artifact.launcher(), tmp_path / "chain"))
    (tmp_path / "links" / "hop").symlink_to("../chain/hop2")
    workdir = tmp_path / "work"
    plant(workdir, artifact.markers)

    for link in (absolute, tmp_path / "links" / "hop"):
        seen, _ = run([str(link), "a b"], cwd=workdir)
        assert seen["argv"] == [str(link), "a b"], "argv[0] must be the path the launcher was invoked as"
        assert_only_artifact_paths(artifact, seen)

    # Relative invocation through a link, and lookup through PATH.
    seen, _ = run(["../links/hop"], cwd=workdir)
    assert seen["argv"] == ["../links/hop"]
    assert_only_artifact_paths(artifact, seen)
    seen, _ = run(["demo-abs", "via PATH"], cwd=workdir, env=clean_env(PATH=f"{elsewhere}:/usr/bin:/bin"))
    assert seen["argv"] == [str(absolute), "via PATH"]
    seen, _ = run(["./demo"], cwd=artifact.root / "bin")
    assert seen["argv"] == ["./demo"]
    assert_only_artifact_paths(artifact, seen)


def test_current_directory_does_not_leak_in(artifact: Artifact, tmp_path: Path) -> None:
    workdir = tmp_path / "hostile cwd"
    plant(workdir, artifact.markers)
    (workdir / "demo_pkg").mkdir()  # a package shadowing the app's, too
    (workdir / "demo_pkg" / "__init__.py").write_text((workdir / "demo_pkg.py").read_text())
    for name in LAUNCHERS:
        seen, _ = run([str(artifact.launcher(name))], cwd=workdir)
        assert str(workdir) not in seen["path"] and "" not in seen["path"] and "." not in seen["path"]
        assert_only_artifact_paths(artifact, seen)


def test_environment_does_not_leak_in(artifact: Artifact, tmp_path: Path) -> None:
    evil = tmp_path / "evil"
    plant(evil, artifact.markers)
    user_base = tmp_path / "userbase"
    user_site = user_base / "lib" / f"python{XY}" / "site-packages"
    plant(user_site, artifact.markers)
    home = tmp_path / "home"
    plant(home / ".local" / "lib" / f"python{XY}" / "site-packages", artifact.markers)
    env = clean_env(PYTHONPATH=f"{evil}:{evil}/demo_pkg", PYTHONUSERBASE=str(user_base), HOME=str(home),
                    PYTHONHOME=str(tmp_path / "no-such-home"), PYTHONSTARTUP=str(evil / "evil_module.py"),
                    PYTHONINSPECT="1", PYTHONSAFEPATH="", PYTHONNOUSERSITE="", PYTHONWARNINGS="error::Warning:evil",
                    DEMO_EXIT="3")
    seen, _ = run([str(artifact.launcher()), "arg"], cwd=evil, env=env, expect=3)
    assert seen["argv"] == [str(artifact.launcher()), "arg"]
    for entry in seen["path"]:
        assert str(tmp_path) not in entry
    assert_only_artifact_paths(artifact, seen)


def test_launcher_runs_with_the_source_prefix_hidden(artifact: Artifact, fake_release: FakeRelease,
                                                     tmp_path: Path) -> None:
    reason = cannot_hide_directories()
    if reason:
        pytest.skip(f"cannot hide the source prefix: {reason}")
    copy = tmp_path / "moved" / "demo-1.0"
    shutil.copytree(artifact.root, copy, symlinks=True)
    proc = run_hidden(fake_release.source_prefix, [str(copy / "bin" / "demo"), "hidden", ""], cwd=tmp_path,
                      env=clean_env(DEMO_EXIT="7"))
    assert proc.returncode == 7, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["argv"] == [str(copy / "bin" / "demo"), "hidden", ""]
    assert seen["prefix"] == f"{copy}/python"
    assert seen["package_file"] == f"{copy}/app/demo_pkg/__init__.py"
    assert all(entry.startswith(f"{copy}/") for entry in seen["path"])


# --------------------------------------------------------------------------------------------------------------
# Entry point and script name validation

@pytest.mark.parametrize("entry_point", [
    "", " ", ":main", "demo:", "demo:main:extra", "demo main", "demo-pkg:main", "1demo:main", "demo:1main",
    "demo:ma'in", "demo:main()", "demo.:main", "demo:main.", ".demo:main", "demo:main\nimport os",
    "demo; import os:main", "demo:main [extra", "demo:main [x] trailing", "demo:ma-in", "demo/x:main",
])
def test_invalid_entry_points_are_rejected(entry_point: str, tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="invalid entry point"):
        bootstrap_code(entry_point)
    with pytest.raises(InstallError, match="invalid entry point"):
        write_launcher(tmp_path / "bin", "demo", entry_point, INTERPRETER)
    assert not (tmp_path / "bin" / "demo").exists()


@pytest.mark.parametrize(("entry_point", "expected"), [
    ("demo:main", ["from demo import main", "sys.exit(main())"]),
    ("demo.cli:App.run", ["from demo.cli import App", "sys.exit(App.run())"]),
    ("  demo : main  [extra1, extra2]", ["from demo import main", "sys.exit(main())"]),
    ("demo.__main__", ['runpy._run_module_as_main("demo.__main__", alter_argv=False)']),
])
def test_bootstrap_code(entry_point: str, expected: list[str]) -> None:
    code = bootstrap_code(entry_point)
    assert "'" not in code
    compile(code, "<launcher>", "exec")
    lines = code.splitlines()
    assert lines[:2] == ["import sys", "sys.argv[0:2] = sys.argv[1:2]"]
    assert lines[-len(expected):] == expected


@pytest.mark.parametrize("name", ["", "../demo", "a b", "demo\n", "-demo", ".demo", "de/mo", "demo;x", "démo"])
def test_invalid_script_names_are_rejected(name: str, tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="cannot be a file name of a launcher"):
        write_launcher(tmp_path / "bin", name, "demo:main", INTERPRETER)
    assert not (tmp_path / "bin").exists() or list((tmp_path / "bin").iterdir()) == []


def test_extras_cannot_inject_shell_commands(artifact: Artifact, tmp_path: Path) -> None:
    """Extras are ignored by launchers; a newline inside them must not end the launcher's comment line."""
    marker = tmp_path / "injected"
    bin_dir = artifact.root / "bin"
    launcher = write_launcher(bin_dir, "demo-extras", f"demo_pkg:main [x\ntouch '{marker}'\n]", INTERPRETER)
    try:
        text = launcher.read_text()
        assert "touch" not in text
        seen, _ = run([str(launcher), "ok"], cwd=tmp_path)
        assert seen["argv"] == [str(launcher), "ok"]
        assert not marker.exists()
    finally:
        launcher.unlink()


def test_app_pth_is_written(tmp_path: Path) -> None:
    site_packages = tmp_path / "python" / "lib" / f"python{XY}" / "site-packages"
    path = write_app_pth(site_packages)
    assert path == site_packages / APP_PTH_NAME
    content = path.read_text(encoding="utf-8")
    assert content.startswith("import ") and content.endswith("\n") and content.count("\n") == 1
