"""Readers and writers of executable formats (ELF, Mach-O, PE) and ad-hoc Mach-O code signing: mechanism, no policy."""
