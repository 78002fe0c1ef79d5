"""The hand-off to Hatch's PyApp builder (``hatch build -t app`` without ``--hooks-only``).

PyApp itself cannot be compiled here: its crates come from crates.io, which this machine cannot reach. The builds
below therefore run hatchling's real binary builder against a *stand-in* ``cargo`` on ``PATH``: a test double of
that external tool which records the arguments and ``PYAPP_*`` variables it was called with, keeps a copy of the
distribution PyApp would embed, and writes the file hatchling expects (``<root>/bin/pyapp``). The embedded
distribution is then unpacked and run the way PyApp runs it (``PYAPP_FULL_ISOLATION``: unpacked as is, its own
interpreter with ``-I -c "import module;module.function()"``), with the source interpreter's prefix hidden.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from e2e_support import (
    can_hide_directories,
    copy_example_project,
    run_hatchling,
    run_hidden,
)
from pbs_release import FakeRelease

from hatch_pbs.forms.pyapp import CONFLICTING, EnvironmentPatch, handoff_variables

pytestmark = pytest.mark.e2e

STAND_IN_CARGO = textwrap.dedent('''\
    #!{python}
    """Stand-in for cargo (a test double; see tests/test_pyapp.py): records the call, writes <root>/bin/pyapp."""
    import json, os, shutil, sys

    arguments = sys.argv[1:]
    records = os.environ["STAND_IN_CARGO_RECORDS"]
    number = len([name for name in os.listdir(records) if name.endswith(".json")])
    variables = {{key: value for key, value in os.environ.items() if key.startswith("PYAPP_")}}
    distribution = variables.get("PYAPP_DISTRIBUTION_PATH")
    if distribution:
        shutil.copy(distribution, os.path.join(records, f"distribution-{{number}}-" + os.path.basename(distribution)))
    with open(os.path.join(records, f"call-{{number}}.json"), "w") as record:
        json.dump({{"arguments": arguments, "variables": variables}}, record)
    root = arguments[arguments.index("--root") + 1]
    os.makedirs(os.path.join(root, "bin"))
    binary = os.path.join(root, "bin", "pyapp")
    with open(binary, "w") as output:
        output.write("#!/bin/sh\\necho stand-in pyapp binary\\n")
    os.chmod(binary, 0o755)
''')

RECORDING_HOOK = textwrap.dedent('''\
    import json, os
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface

    class RecordingHook(BuildHookInterface):
        """Runs after the pbs hook: records the PYAPP_* variables once the build is over."""

        def finalize(self, version, build_data, artifact_path):
            variables = {key: value for key, value in os.environ.items() if key.startswith("PYAPP_")}
            with open(os.environ["STAND_IN_CARGO_RECORDS"] + "/after-build.json", "w") as record:
                json.dump(variables, record)
''')


def _path_without_cargo() -> str:
    return os.pathsep.join(entry for entry in os.environ.get("PATH", "").split(os.pathsep)
                           if entry and not (Path(entry) / "cargo").exists())


def _project(tmp_path: Path, fake_release: FakeRelease, extra: str = "") -> Path:
    minor = ".".join(fake_release.python_version.split(".")[:2])
    project = copy_example_project(tmp_path / "project", hook_table=f'python-version = "{minor}"\n{extra}')
    (project / "hatch_build.py").write_text(RECORDING_HOOK, encoding="utf-8")
    with (project / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write('\n[tool.hatch.build.targets.app.hooks.custom]\n')
    return project


def _env(tmp_path: Path, fake_release: FakeRelease, wheelhouse: Path, *, cargo: bool = True) -> dict[str, str]:
    records = tmp_path / "records"
    records.mkdir(exist_ok=True)
    path = _path_without_cargo()
    if cargo:
        bin_dir = tmp_path / "stand-in-bin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "cargo").write_text(STAND_IN_CARGO.format(python=sys.executable), encoding="utf-8")
        (bin_dir / "cargo").chmod(0o755)
        path = f"{bin_dir}{os.pathsep}{path}"
    return {"HATCH_PBS_MIRROR": fake_release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(tmp_path / "cache"),
            "UV_OFFLINE": "1", "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
            "PATH": path, "STAND_IN_CARGO_RECORDS": str(records), "CARGO": "", "CARGO_BUILD_TARGET": ""}


def _calls(tmp_path: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((tmp_path / "records").glob("call-*.json"))]


def test_pyapp_embeds_the_artifact_and_the_environment_is_restored(
        tmp_path: Path, fake_release: FakeRelease, wheelhouse: Path) -> None:
    project = _project(tmp_path, fake_release)
    env = _env(tmp_path, fake_release, wheelhouse)
    env["PYAPP_DISTRIBUTION_SOURCE"] = "https://example.invalid/python.tar.gz"  # the user's, rejected by PyApp
    result = run_hatchling(project, "app", env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    stem = f"pbs-demo-1.0.0-{fake_release.triple}"
    assert "PYAPP_DISTRIBUTION_SOURCE is ignored for this build" in output
    (call,) = _calls(tmp_path)
    assert call["arguments"][:3] == ["install", "pyapp", "--force"]
    variables = call["variables"]
    minor = ".".join(fake_release.python_version.split(".")[:2])
    assert variables["PYAPP_DISTRIBUTION_PATH"] == str(project / "dist" / "app" / f"{stem}.tar.gz")
    assert variables["PYAPP_DISTRIBUTION_PYTHON_PATH"] == f"{stem}/python/bin/python{minor}"
    assert variables["PYAPP_DISTRIBUTION_SITE_PACKAGES_PATH"] == f"{stem}/app"
    assert (variables["PYAPP_FULL_ISOLATION"], variables["PYAPP_SKIP_INSTALL"]) == ("1", "1")
    assert (variables["PYAPP_PROJECT_NAME"], variables["PYAPP_PROJECT_VERSION"]) == ("pbs-demo", "1.0.0")
    assert variables["PYAPP_EXEC_SPEC"] == "pbs_demo.cli:main"
    assert not set(CONFLICTING) & set(variables)
    # Hatch's binary builder put the (stand-in) binary beside the archive.
    assert (project / "dist" / "app" / "pbs-demo-1.0.0").read_text() == "#!/bin/sh\necho stand-in pyapp binary\n"
    # After the build, the environment is as the user left it.
    after = json.loads((tmp_path / "records" / "after-build.json").read_text())
    assert after == {"PYAPP_DISTRIBUTION_SOURCE": "https://example.invalid/python.tar.gz"}

    # The embedded distribution runs the app from a scratch directory, as PyApp would run it.
    reason = can_hide_directories()
    if reason:
        pytest.skip(f"cannot hide the source prefix: {reason}")
    install_dir = tmp_path / "pyapp-data" / "pbs-demo"
    install_dir.mkdir(parents=True)
    (embedded,) = (tmp_path / "records").glob("distribution-0-*")
    with tarfile.open(embedded) as archive:
        archive.extractall(install_dir, filter="tar")
    module, function = variables["PYAPP_EXEC_SPEC"].split(":")
    command = [str(install_dir / variables["PYAPP_DISTRIBUTION_PYTHON_PATH"]), "-I", "-c",
               f"import {module};{module}.{function}()"]
    ran = run_hidden(fake_release.source_prefix, [*command, "--version"], cwd=tmp_path,
                     env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert (ran.returncode, ran.stdout) == (0, "pbs-demo 1.0.0\n"), ran.stderr
    ran = run_hidden(fake_release.source_prefix, [*command, "selftest"], cwd=tmp_path,
                     env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert ran.stdout == "pbs-demo: selftest: 5 of 5 checks passed\n", ran.stderr


def test_directory_format_is_packed_for_pyapp(tmp_path: Path, fake_release: FakeRelease, wheelhouse: Path) -> None:
    project = _project(tmp_path, fake_release, 'archive-format = "dir"')
    result = run_hatchling(project, "app", _env(tmp_path, fake_release, wheelhouse))
    assert result.returncode == 0, result.stdout + result.stderr
    (call,) = _calls(tmp_path)
    stem = f"pbs-demo-1.0.0-{fake_release.triple}"
    assert Path(call["variables"]["PYAPP_DISTRIBUTION_PATH"]).name == f"{stem}.tar.gz"
    assert not Path(call["variables"]["PYAPP_DISTRIBUTION_PATH"]).exists()  # a temporary archive, removed after
    (embedded,) = (tmp_path / "records").glob("distribution-0-*")
    with tarfile.open(embedded) as archive:
        assert f"{stem}/{call['variables']['PYAPP_DISTRIBUTION_PYTHON_PATH'].split('/', 1)[1]}" in archive.getnames()


def test_hooks_only_never_hands_off(tmp_path: Path, fake_release: FakeRelease, wheelhouse: Path) -> None:
    project = _project(tmp_path, fake_release, "pyapp = true")
    result = run_hatchling(project, "app", _env(tmp_path, fake_release, wheelhouse), "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _calls(tmp_path) == [] and "PyApp will embed" not in result.stdout + result.stderr


def test_pyapp_false_leaves_hatch_alone(tmp_path: Path, fake_release: FakeRelease, wheelhouse: Path) -> None:
    project = _project(tmp_path, fake_release, "pyapp = false")
    result = run_hatchling(project, "app", _env(tmp_path, fake_release, wheelhouse))
    assert result.returncode == 0, result.stdout + result.stderr
    (call,) = _calls(tmp_path)
    assert "PYAPP_DISTRIBUTION_PATH" not in call["variables"] and "PYAPP_SKIP_INSTALL" not in call["variables"]


def test_pyapp_true_without_cargo_fails_before_building(tmp_path: Path, fake_release: FakeRelease,
                                                       wheelhouse: Path) -> None:
    project = _project(tmp_path, fake_release, "pyapp = true")
    result = run_hatchling(project, "app", _env(tmp_path, fake_release, wheelhouse, cargo=False))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Option `pyapp` for build hook `pbs` is true, but cargo was not found" in output
    assert "Traceback" not in output
    assert not (project / "dist").exists() or not list((project / "dist").rglob("*.tar.gz"))


def test_pyapp_auto_without_cargo_says_so_once(tmp_path: Path, fake_release: FakeRelease, wheelhouse: Path) -> None:
    project = _project(tmp_path, fake_release)
    result = run_hatchling(project, "app", _env(tmp_path, fake_release, wheelhouse, cargo=False))
    output = result.stdout + result.stderr
    assert output.count("only the archives will be built") == 1
    assert "--hooks-only" in output and "https://rustup.rs" in output
    assert (project / "dist" / "app" / f"pbs-demo-1.0.0-{fake_release.triple}.tar.gz").is_file()
    assert result.returncode != 0  # hatchling's binary builder itself then stops: it needs cargo


def test_cargo_target_outside_the_targets(tmp_path: Path, fake_release: FakeRelease, wheelhouse: Path) -> None:
    project = _project(tmp_path, fake_release)
    env = _env(tmp_path, fake_release, wheelhouse)
    env["CARGO_BUILD_TARGET"] = "aarch64-apple-darwin"
    result = run_hatchling(project, "app", env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert ("PyApp builds for aarch64-apple-darwin (CARGO_BUILD_TARGET or the build machine), but option `targets` "
            "for build hook `pbs` does not include it") in output
    assert _calls(tmp_path) == []


#: What cargo prints, and its exit status, when it cannot reach crates.io (cargo 1.9x, recorded on a machine without
#: network access): the output of the stand-in used where no real cargo is installed.
OFFLINE_CARGO = textwrap.dedent('''\
    #!/bin/sh
    # Stand-in for cargo where none is installed (a test double; see tests/test_pyapp.py): fails as cargo does when
    # it cannot reach its registry.
    cat >&2 <<'END'
        Updating crates.io index
    error: download of config.json failed

    Caused by:
      failed to download from `https://index.crates.io/config.json`

    Caused by:
      [7] Could not connect to server (Failed to connect to 127.0.0.1 port 9 after 0 ms: Could not connect to server)
    END
    exit 101
''')


def _real_cargo() -> Path | None:
    """A real cargo on this machine (on ``PATH`` or where rustup installs it), or ``None``."""
    found = shutil.which("cargo") or shutil.which("cargo", path=str(Path.home() / ".cargo" / "bin"))
    return Path(found) if found else None


def test_cargo_that_cannot_reach_its_registry_is_one_line(tmp_path: Path, fake_release: FakeRelease,
                                                           wheelhouse: Path) -> None:
    """`hatch build -t app` where cargo cannot fetch PyApp: the archives are built and one line says so and how
    to build without PyApp (not hatchling's traceback of "Compilation failed").

    With a real cargo (the usual case here), the registry is made unreachable for real wherever the test runs: an
    empty ``CARGO_HOME`` (no cached index) and ``CARGO_HTTP_PROXY`` naming a loopback port that refuses connections.
    Only where no cargo is installed does a stand-in script print what cargo prints then and exit with its status."""
    project = _project(tmp_path, fake_release)
    env = _env(tmp_path, fake_release, wheelhouse, cargo=False)
    cargo = _real_cargo()
    with socket.socket() as refusing:  # bound, never listening: connections to it are refused
        refusing.bind(("127.0.0.1", 0))
        if cargo is not None:
            env.update({"PATH": f"{cargo.parent}{os.pathsep}{env['PATH']}",
                        "CARGO_HOME": str(tmp_path / "cargo-home"), "CARGO_HTTP_PROXY": f"http://127.0.0.1:{refusing.getsockname()[1]}", "CARGO_NET_RETRY": "0",
                        "CARGO_BUILD_TARGET": fake_release.triple})  # cargo refuses an empty one
        else:
            bin_dir = tmp_path / "offline-cargo-bin"
            bin_dir.mkdir()
            (bin_dir / "cargo").write_text(OFFLINE_CARGO, encoding="utf-8")
            (bin_dir / "cargo").chmod(0o755)
            env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
        result = run_hatchling(project, "app", env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output and "Compilation failed" not in output, output
    app_dir = project / "dist" / "app"
    (line,) = [line for line in output.splitlines() if "PyApp was not built" in line]
    assert line == (f"hatch-pbs: PyApp was not built: cargo exited with status 101; its messages are above (it "
                    f"fetches PyApp from crates.io, or the registry its configuration names). The archives in "
                    f"{app_dir} are complete; `hatch build -t app --hooks-only` builds them without PyApp."), output
    print(output)
    assert "failed to download from `https://index.crates.io/config.json`" in result.stderr.split(line)[0]
    assert (app_dir / f"pbs-demo-1.0.0-{fake_release.triple}.tar.gz").is_file()
    assert (app_dir / "SHA256SUMS").is_file()


def _crates_io_reachable() -> str:
    """Empty when cargo is installed and crates.io answers, else why not."""
    import shutil
    import socket

    if shutil.which("cargo") is None:
        return "cargo is not installed"
    try:
        socket.create_connection(("index.crates.io", 443), timeout=5).close()
    except OSError as error:
        return f"crates.io is unreachable ({error})"
    return ""


@pytest.mark.real_pyapp
def test_a_real_pyapp_binary_runs_offline(tmp_path: Path, fake_release: FakeRelease, wheelhouse: Path) -> None:
    """Where cargo can reach crates.io: Hatch compiles a real PyApp that embeds the artifact; the binary runs with
    no network (an empty HOME for PyApp's data, the source interpreter hidden)."""
    reason = _crates_io_reachable() or can_hide_directories()
    if reason:
        pytest.skip(f"no real PyApp build here: {reason}")
    project = _project(tmp_path, fake_release, "pyapp = true")
    env = _env(tmp_path, fake_release, wheelhouse, cargo=False)
    env["PATH"] = os.environ["PATH"]  # the real cargo
    result = run_hatchling(project, "app", env)
    assert result.returncode == 0, result.stdout + result.stderr
    binary = project / "dist" / "app" / "pbs-demo-1.0.0"
    ran = run_hidden(fake_release.source_prefix, [str(binary), "--version"], cwd=tmp_path,
                     env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")})
    assert (ran.returncode, ran.stdout) == (0, "pbs-demo 1.0.0\n"), ran.stderr


# --- units ------------------------------------------------------------------------------------------------------


def test_environment_patch_restores_exactly() -> None:
    environ = {"PYAPP_DISTRIBUTION_SOURCE": "https://x", "PYAPP_SKIP_INSTALL": "0", "OTHER": "1"}
    before = dict(environ)
    patch = EnvironmentPatch(handoff_variables("/a/b.tar.gz", "b", "python/bin/python3.12", "3.12.7"))
    assert patch.apply(environ) == ["PYAPP_DISTRIBUTION_SOURCE"]
    assert environ["PYAPP_SKIP_INSTALL"] == "1" and "PYAPP_DISTRIBUTION_SOURCE" not in environ
    assert environ["PYAPP_DISTRIBUTION_PYTHON_PATH"] == "b/python/bin/python3.12"
    assert environ["PYAPP_PYTHON_VERSION"] == "3.12"
    patch.restore(environ)
    assert environ == before
    patch.restore(environ)  # idempotent
    assert environ == before
