"""hatch_pbs.artifact.sizes: the size table, on real trees with dist-info RECORD files."""

from __future__ import annotations

from pathlib import Path

from hatch_pbs.artifact.sizes import SizeRow, measure_artifact, size_table


def _write(root: Path, files: dict[str, int]) -> None:
    for name, size in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)


def _record(root: Path, dist_info: str, names: list[str]) -> None:
    (root / dist_info / "RECORD").write_text("".join(f"{name},sha256=x,1\n" for name in names), encoding="utf-8")


def test_rows_per_part_and_distribution(tmp_path: Path) -> None:
    tree = tmp_path / "demo-1.0-x86_64-unknown-linux-gnu"
    _write(tree, {
        "python/bin/python3.12": 1000, "python/lib/libpython3.12.so": 500,
        "app/rich/__init__.py": 300, "app/rich/__pycache__/__init__.cpython-312.pyc": 200,
        "app/rich-14.0.0.dist-info/METADATA": 10,
        "app/six.py": 40, "app/__pycache__/six.cpython-312.pyc": 30, "app/six-1.17.0.dist-info/METADATA": 5,
        "app/demo/cli.pyc": 70, "app/demo-1.0.dist-info/METADATA": 3,
        "app/stray.txt": 7,
        "bin/demo": 100, "hatch-pbs-manifest.json": 20,
    })
    _record(tree / "app", "rich-14.0.0.dist-info", ["rich/__init__.py", "rich-14.0.0.dist-info/METADATA"])
    _record(tree / "app", "six-1.17.0.dist-info", ["six.py", "__pycache__/six.cpython-312.pyc"])
    _record(tree / "app", "demo-1.0.dist-info", ["demo/cli.py"])  # sourceless: RECORD still names the source
    rows = measure_artifact(tree)

    def record(dist_info: str) -> int:  # RECORD files count with their distribution
        return (tree / "app" / dist_info / "RECORD").stat().st_size

    assert rows == [
        SizeRow("runtime (python/)", 2, 1500),
        SizeRow("rich 14.0.0", 4, 510 + record("rich-14.0.0.dist-info"),
                entries=("app/rich-14.0.0.dist-info/", "app/rich/")),
        SizeRow("six 1.17.0", 4, 75 + record("six-1.17.0.dist-info"), entries=("app/six-1.17.0.dist-info/",
                                                                               "app/six.py")),
        SizeRow("demo 1.0", 3, 73 + record("demo-1.0.dist-info"), entries=("app/demo-1.0.dist-info/", "app/demo/")),
        SizeRow("app/ (other files)", 1, 7),
        SizeRow("launchers and manifest", 2, 120),
    ]


def test_table_lines(tmp_path: Path) -> None:
    rows = [SizeRow("runtime (python/)", 10, 45_000_000), SizeRow("rich 14.0.0", 3, 1_500_000)]
    lines = size_table(rows, archive_name="demo.tar.gz", archive_size=20_000_000)
    assert lines == [
        "part                files        MB",
        "runtime (python/)      10     45.00",
        "rich 14.0.0             3      1.50",
        "total unpacked         13     46.50",
        "demo.tar.gz                   20.00",
    ]
    assert size_table(rows, archive_name="demo", archive_size=None)[-1].startswith("total unpacked")


def test_distributions_the_scripts_never_import_are_marked_with_the_exclude_that_drops_them(tmp_path: Path) -> None:
    tree = tmp_path / "demo-1.0-x86_64-unknown-linux-gnu"
    _write(tree, {"python/bin/python3.12": 1000, "app/demo/__init__.py": 10, "app/demo-1.0.dist-info/METADATA": 3,
                  "app/pip/__init__.py": 2_000_000, "app/pip-26.0.dist-info/METADATA": 5, "app/bin/pip": 200,
                  "app/setuptools/__init__.py": 1_000_000, "app/_distutils_hack/__init__.py": 100,
                  "app/setuptools-80.0.dist-info/METADATA": 5, "app/distutils-precedence.pth": 30})
    _record(tree / "app", "demo-1.0.dist-info", ["demo/__init__.py"])
    _record(tree / "app", "pip-26.0.dist-info", ["pip/__init__.py", "../../bin/x", "bin/pip"])
    _record(tree / "app", "setuptools-80.0.dist-info", ["setuptools/__init__.py", "_distutils_hack/__init__.py",
                                                        "distutils-precedence.pth"])
    rows = measure_artifact(tree, imported=frozenset({"demo"}))
    flags = {row.label: row.imported for row in rows}
    assert flags == {"runtime (python/)": None, "pip 26.0": False, "setuptools 80.0": False, "demo 1.0": True,
                     "launchers and manifest": None}
    assert measure_artifact(tree, imported=frozenset({"demo", "_distutils_hack"}))[2].imported is True  # any name
    assert {row.imported for row in measure_artifact(tree)} == {None}  # not scanned: nothing is claimed
    lines = size_table(rows, archive_name="demo.tar.gz", archive_size=1_000_000)
    assert lines[2].endswith("2.00  not imported") and lines[2].startswith("pip 26.0")
    assert lines[4].startswith("demo 1.0") and not lines[4].endswith("imported")
    assert lines[-1] == (
        "not imported by the scripts' code (a static scan; a plugin or a module imported by name is not seen): "
        "pip 26.0, setuptools 80.0, 3.00 MB; to leave them out: exclude = [\"app/bin/pip\", \"app/pip-26.0.dist-info/\", "
        "\"app/pip/\", \"app/_distutils_hack/\", \"app/distutils-precedence.pth\", \"app/setuptools-80.0.dist-info/\", "
        "\"app/setuptools/\"]")
