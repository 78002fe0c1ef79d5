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
        SizeRow("rich 14.0.0", 4, 510 + record("rich-14.0.0.dist-info")),
        SizeRow("six 1.17.0", 4, 75 + record("six-1.17.0.dist-info")),
        SizeRow("demo 1.0", 3, 73 + record("demo-1.0.dist-info")),
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
