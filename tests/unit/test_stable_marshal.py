"""hatch_pbs.bytecode.stable_marshal: marshal data whose FLAG_REF marks depend on the object alone, not on the reference counts
of the process that marshalled it. Real marshal data of the running interpreter throughout."""

from __future__ import annotations

import marshal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from hatch_pbs.bytecode.stable_marshal import (
    FLAG_REF,
    PYC_HEADER_SIZE,
    UnsupportedMarshalData,
    normalize,
    normalize_pyc,
)


def _text(*parts: str) -> str:
    """A new (not interned, not shared) string object."""
    return "".join(parts)


def test_an_extra_reference_in_the_process_no_longer_changes_the_bytes() -> None:
    alone = marshal.dumps((_text("hatch", "-pbs"), 7))
    held = _text("hatch", "-pbs")
    kept = [held]  # a second reference, as another module or an earlier compile may hold
    with_reference = marshal.dumps((held, 7))
    # A tuple of two is ")", its length, then the string's type byte: marshal's heuristic marks the held string only.
    assert with_reference[2] & FLAG_REF and not alone[2] & FLAG_REF
    assert normalize(alone) == normalize(with_reference)
    assert not normalize(with_reference)[2] & FLAG_REF
    assert kept


def test_an_object_that_occurs_twice_keeps_its_reference_and_the_numbers_close_up() -> None:
    shared = _text("shared", "-string")
    unshared = _text("only", "-once")
    kept = [unshared]  # flagged by marshal, referred to by nothing: its flag goes, the numbers after it shift
    data = marshal.dumps((unshared, shared, 3.5, shared))
    rewritten = normalize(data)
    assert len(rewritten) == len(data) and rewritten != data
    loaded = marshal.loads(rewritten)
    assert loaded == (unshared, shared, 3.5, shared)
    assert loaded[1] is loaded[3]  # still one object after loading: the reference was kept and renumbered
    assert kept


def test_code_of_the_standard_library_unmarshals_to_the_same_code() -> None:
    """Every kind of constant, nested code objects, this interpreter's code-object layout."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    checked = 0
    for source in sorted(stdlib.glob("*.py")):
        code = compile(source.read_bytes(), str(source), "exec", dont_inherit=True)
        data = marshal.dumps(code)
        rewritten = normalize(data)
        assert len(rewritten) == len(data)
        assert marshal.loads(rewritten) == code, source
        assert normalize(rewritten) == rewritten  # idempotent
        checked += 1
    assert checked > 100


COMPILE_IN_A_BUSY_PROCESS = """
import marshal, sys
sys.path.insert(0, sys.argv[1])
from stable_marshal import normalize
if sys.argv[3] == "busy":  # modules whose names and strings the compiled source shares (under 3.10 the raw bytes
    import argparse, concurrent.futures, dataclasses, json, typing  # differ then)
    held = [name for module in list(sys.modules.values()) for name in dir(module)]
code = compile(open(sys.argv[2], "rb").read(), sys.argv[2], "exec", dont_inherit=True)
sys.stdout.buffer.write(normalize(marshal.dumps(code)))
"""


def test_the_same_source_gives_the_same_bytes_in_a_quiet_and_a_busy_process(tmp_path: Path) -> None:
    """A source the process has not imported itself, as in the bytecode worker (it compiles what it never
    imports). Under 3.13 a module the process imported from its own ``.pyc`` can come out with other strings
    interned, which changes more than the marks (see the module's docstring)."""
    source = Path(sysconfig.get_paths()["stdlib"]) / "difflib.py"
    module_directory = str(Path(normalize.__code__.co_filename).parent)
    outputs = [subprocess.run([sys.executable, "-I", "-c", COMPILE_IN_A_BUSY_PROCESS, module_directory,
                               str(source), state], capture_output=True, check=True,
                              env={"PYTHONHASHSEED": "0"}).stdout
               for state in ("quiet", "busy")]
    assert outputs[0] and outputs[0] == outputs[1]


@pytest.mark.parametrize("damage", ["cut short", "bytes after the object", "unknown type code"])
def test_data_it_cannot_read_is_refused(damage: str) -> None:
    data = marshal.dumps(compile("x = ('a', 1.5, b'b')", "m.py", "exec"))
    damaged = {"cut short": data[:-3], "bytes after the object": data + b"N",
               "unknown type code": b"?" + data[1:]}[damage]
    with pytest.raises(UnsupportedMarshalData):
        normalize(damaged)


def test_a_pyc_file_is_rewritten_only_when_its_marks_change(tmp_path: Path) -> None:
    header = b"\x00" * PYC_HEADER_SIZE
    pyc = tmp_path / "m.pyc"
    held = _text("held", "-string")
    kept = [held]
    pyc.write_bytes(header + marshal.dumps((held, 1)))
    assert normalize_pyc(pyc) is True
    assert pyc.read_bytes() == header + normalize(marshal.dumps((_text("held", "-string"), 1)))
    assert normalize_pyc(pyc) is False
    unreadable = tmp_path / "other.pyc"
    unreadable.write_bytes(header + b"?junk")
    assert normalize_pyc(unreadable) is False and unreadable.read_bytes() == header + b"?junk"
    assert kept


def test_frozenset_elements_of_data_before_3_11_are_put_in_one_order() -> None:
    """Before 3.11 marshal writes a frozenset in the set's iteration order, which another process may not share
    (the busy-process test above failed under 3.10 on ``{"delete", "replace"}`` in difflib). Data of those versions
    gets its elements in the order of their bytes; from 3.11 marshal sorts them itself and the data is kept."""
    def frozenset_data(*elements: bytes) -> bytes:
        return b">" + len(elements).to_bytes(4, "little") + b"".join(elements)

    def short_ascii(text: str) -> bytes:
        return b"z" + bytes([len(text)]) + text.encode()

    delete, replace, nested = short_ascii("delete"), short_ascii("replace"), frozenset_data(short_ascii("b"),
                                                                                          short_ascii("a"))
    one = frozenset_data(delete, replace, nested)
    other = frozenset_data(nested, replace, delete)
    assert normalize(one, (3, 10)) == normalize(other, (3, 10)) == frozenset_data(
        frozenset_data(short_ascii("a"), short_ascii("b")), delete, replace)
    assert marshal.loads(normalize(other, (3, 10))) == marshal.loads(other)
    assert normalize(other, (3, 11)) == other  # 3.11 and later: marshal's own order is kept
    # An element that a later reference points back to keeps its place: moving it would renumber the reference.
    flagged = b"\xfa" + bytes([6]) + b"delete"  # FLAG_REF | short ascii interned
    with_reference = b")\x02" + frozenset_data(replace, flagged) + b"r\x00\x00\x00\x00"
    assert normalize(with_reference, (3, 10)) == with_reference
