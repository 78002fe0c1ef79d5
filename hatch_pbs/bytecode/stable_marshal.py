"""Makes a ``.pyc`` file's marshal data independent of the compiling process: the same code gives the same bytes.

CPython's marshal marks an object it writes with ``FLAG_REF`` (bit 0x80 of its type byte: "later data may refer back
to me") whenever the object's reference count is above 1, and numbers the marked objects in the order written; a
later occurrence of a marked object is written as ``TYPE_REF`` (``r``) plus that number. Reference counts depend on
what else the compiling process holds (modules it imported, other files compiled before), so the same source can
give different bytes in two builds: the flags and numbers differ, the objects do not (python/cpython#78274, still
open for code objects and frozensets in 3.13, astral-sh/uv#10619). :func:`normalize` keeps ``FLAG_REF`` only on the
objects some ``TYPE_REF`` really refers to and renumbers the references. Those are exactly the objects that occur
more than once (each has a reference count above 1 wherever it is compiled), so the result depends on the code alone.
The rewrite changes flag bits and 4-byte numbers in place: the data keeps its length, and it unmarshals to an equal
object (checked).

Before CPython 3.11, marshal also writes a frozenset's elements in the set's own iteration order, which depends on
the process as well (python/cpython#78274; 3.11 sorts them): for data of those versions the elements of each
frozenset are put in the order of their normalized bytes, where that cannot change any reference number (no element
holds an object referred to later).

Not rewritten: which strings are written as interned. Under CPython 3.13, compiling a module the process has itself
imported (from its ``.pyc``) can give some strings (a class's ``__qualname__``) another interned state, and with it
other back-references, than compiling it elsewhere. The bytecode worker never imports what it compiles, and it
imports the same modules in every build, so its output does not depend on that.

The format read here is marshal version 4 (CPython 3.4 and later) and 5 (3.14: constant slices), as written by
``Python/marshal.c``: the type
codes, and the fields of a code object, which differ between 3.8-3.10 and 3.11-3.14 (:data:`_CODE_LAYOUTS`).

It runs inside the bundled runtime (loaded by path from :mod:`hatch_pbs.bytecode.worker`): standard library only.
"""

import marshal
import sys

#: The bit of a type byte that marks an object later data may refer back to.
FLAG_REF = 0x80
#: A ``.pyc`` file's header before its marshal data (PEP 552: magic, flags, and a hash or a time and a size).
PYC_HEADER_SIZE = 16

#: (32-bit integers before the objects, objects, integers after them, objects after those) of a code object.
#: 3.8-3.10: argcount, posonlyargcount, kwonlyargcount, nlocals, stacksize, flags; code, consts, names, varnames,
#: freevars, cellvars, filename, name; firstlineno; linetable (lnotab). 3.11+: argcount, posonlyargcount,
#: kwonlyargcount, stacksize, flags; code, consts, names, localsplusnames, localspluskinds, filename, name,
#: qualname; firstlineno; linetable, exceptiontable.
_CODE_LAYOUTS = {(3, 8): (6, 8, 1, 1), (3, 11): (5, 8, 1, 2)}

_SINGLETONS = frozenset(b"0NFTS.")
_FIXED_SIZES = {ord("i"): 4, ord("I"): 8, ord("g"): 8, ord("y"): 16}  # I: an old 64-bit integer
_SIZED = frozenset(b"stuaA")  # a 32-bit byte count, then the bytes
_SHORT_SIZED = frozenset(b"zZ")  # a one-byte count, then the bytes
_SEQUENCES = frozenset(b"([<>")  # a 32-bit item count, then the items
_SLICE = ord(":")  # 3.14 (marshal version 5): start, stop, step


class UnsupportedMarshalData(ValueError):
    """The data holds a type code or a layout this module does not know; the caller keeps the data as it is."""


def _code_layout(version):
    """The code-object layout of CPython ``version`` (a ``(major, minor)`` tuple)."""
    if version < (3, 8):
        raise UnsupportedMarshalData(f"code objects of Python {version[0]}.{version[1]}")
    return _CODE_LAYOUTS[(3, 11) if version >= (3, 11) else (3, 8)]


class _Scan:
    """One walk over marshal data: where each ``FLAG_REF`` type byte is (in reference-number order) and where each
    ``TYPE_REF`` number is, with the number it holds."""

    def __init__(self, data, layout):
        self.data = data
        self.layout = layout
        self.flagged = []  # offsets of type bytes carrying FLAG_REF, the n-th one is reference number n
        self.references = []  # (offset of the 4-byte number, number) of every TYPE_REF
        self.frozensets = []  # [(start, end), ...] of the elements of every frozenset, in the order written

    def _int32(self, offset):
        if offset + 4 > len(self.data):
            raise UnsupportedMarshalData("data ends inside a number")
        return int.from_bytes(self.data[offset:offset + 4], "little", signed=True)

    def skip(self, offset):
        """The offset after the object starting at ``offset``."""
        data = self.data
        if offset >= len(data):
            raise UnsupportedMarshalData("data ends inside an object")
        code = data[offset]
        if code & FLAG_REF:
            self.flagged.append(offset)
        kind = code & ~FLAG_REF
        offset += 1
        if kind in _SINGLETONS:
            return offset
        if kind in _FIXED_SIZES:
            return offset + _FIXED_SIZES[kind]
        if kind in _SIZED:
            return offset + 4 + self._int32(offset)
        if kind in _SHORT_SIZED:
            return offset + 1 + data[offset]
        if kind == ord("r"):
            self.references.append((offset, self._int32(offset)))
            return offset + 4
        if kind == ord("l"):  # a 32-bit signed count of 15-bit digits, two bytes each
            return offset + 4 + 2 * abs(self._int32(offset))
        if kind == ord("f"):  # a float as text: one-byte length, text
            return offset + 1 + data[offset]
        if kind == ord("x"):  # a complex number as text: real part, imaginary part
            offset += 1 + data[offset]
            return offset + 1 + data[offset]
        if kind == ord(")"):
            return self._items(offset + 1, data[offset])
        if kind == ord(">"):  # a frozenset: its element boundaries are kept (see _sorted_frozensets)
            return self._elements(offset + 4, self._int32(offset))
        if kind in _SEQUENCES:
            return self._items(offset + 4, self._int32(offset))
        if kind == _SLICE:
            return self._items(offset, 3)
        if kind == ord("{"):  # key, value pairs up to a TYPE_NULL
            while offset < len(data) and data[offset] != ord("0"):
                offset = self.skip(self.skip(offset))
            return offset + 1
        if kind == ord("c"):
            integers, objects, integers_after, objects_after = self.layout
            offset = self._items(offset + 4 * integers, objects)
            return self._items(offset + 4 * integers_after, objects_after)
        raise UnsupportedMarshalData(f"type code {kind!r} at offset {offset - 1}")

    def _elements(self, offset, count):
        if count < 0:
            raise UnsupportedMarshalData("a negative item count")
        bounds = []
        for _ in range(count):
            end = self.skip(offset)
            bounds.append((offset, end))
            offset = end
        self.frozensets.append(bounds)
        return offset

    def _items(self, offset, count):
        if count < 0:
            raise UnsupportedMarshalData("a negative item count")
        for _ in range(count):
            offset = self.skip(offset)
        return offset


def normalize(data, version=None):
    """``data`` (marshal version 4 bytes of one object, as a ``.pyc`` file holds after its header) with
    ``FLAG_REF`` kept only on objects a ``TYPE_REF`` refers to, and the references renumbered: the bytes the
    object's own shape decides, whatever the reference counts were when it was marshalled. Same length as ``data``.

    ``version``: the ``(major, minor)`` CPython version that wrote it (default: the running one; it decides a code
    object's fields).

    Raises:
        UnsupportedMarshalData: a type code or layout not known here, data that ends early or has bytes after the
            object, or a reference to an object not marked for it; or the rewritten data does not unmarshal to an
            object equal to the original's (only checked when ``version`` is the running one).
    """
    version = tuple(version or sys.version_info[:2])
    scan = _Scan(data, _code_layout(version))
    end = scan.skip(0)
    if end != len(data):
        raise UnsupportedMarshalData(f"{len(data) - end} bytes after the object")
    referred = {number for _, number in scan.references}
    if any(number < 0 or number >= len(scan.flagged) for number in referred):
        raise UnsupportedMarshalData("a reference to an object that is not marked for it")
    renumbered: dict[int, int] = {}
    rewritten = bytearray(data)
    for number, offset in enumerate(scan.flagged):
        if number in referred:
            renumbered[number] = len(renumbered)
        else:
            rewritten[offset] &= ~FLAG_REF
    for offset, number in scan.references:
        rewritten[offset:offset + 4] = renumbered[number].to_bytes(4, "little", signed=True)
    if version < (3, 11):
        _sort_frozensets(rewritten, scan.frozensets, [scan.flagged[number] for number in sorted(referred)])
    normalized = bytes(rewritten)
    if normalized != data and version == tuple(sys.version_info[:2]) \
            and marshal.loads(normalized) != marshal.loads(data):
        raise UnsupportedMarshalData("the rewritten data unmarshals to another object")
    return normalized


def _sort_frozensets(rewritten, frozensets, kept):
    """Put the elements of each frozenset of ``rewritten`` (normalized marshal data, changed in place) in the order
    of their bytes, innermost sets first; a set some element of which holds a ``FLAG_REF`` object still marked
    (offsets ``kept``, ascending) is left as it is, as reordering would renumber the references to it."""
    import bisect

    for bounds in sorted(frozensets, key=lambda found: -found[0][0] if found else 0):
        if len(bounds) < 2:
            continue
        start, end = bounds[0][0], bounds[-1][1]
        if bisect.bisect_left(kept, start) != bisect.bisect_left(kept, end):
            continue
        elements = sorted(bytes(rewritten[first:last]) for first, last in bounds)
        rewritten[start:end] = b"".join(elements)


def normalize_pyc(path):
    """Rewrite the ``.pyc`` file at ``path`` (written by the running interpreter, nobody reading it yet) with
    :func:`normalize`\\ d marshal data; returns whether its bytes changed. Data this module cannot read is left as
    it is (the file stays valid, only perhaps not reproducible).

    Raises:
        OSError: the file cannot be read or written.
    """
    with open(path, "rb") as stream:
        compiled = stream.read()
    try:
        data = normalize(compiled[PYC_HEADER_SIZE:])
    except (UnsupportedMarshalData, RecursionError):
        return False
    if data == compiled[PYC_HEADER_SIZE:]:
        return False
    with open(path, "wb") as stream:
        stream.write(compiled[:PYC_HEADER_SIZE] + data)
    return True
