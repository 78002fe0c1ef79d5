"""Single-file executables: an artifact packed behind a small prebuilt bootstrap program.

``<script>-<version>-<triple>[.exe]`` is :mod:`hatch_pbs.onefile.bootstrap`'s program for the target followed by
the artifact as a ``.tar.zst``, the launcher's path inside it and a trailer (:mod:`hatch_pbs.onefile.payload` is
the format, :func:`~hatch_pbs.onefile.payload.write_onefile` writes it). Its first start extracts the artifact
into a per-user cache directory named by the payload's sha256 and runs the launcher; later starts run it
directly. The bootstrap sources, build script and specification are in ``hatch_pbs/onefile/bootstrap/``.
"""
