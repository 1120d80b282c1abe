"""The object loader: ``elf`` (clang-built BPF ELF objects to an ``ElfObject``), ``btf``
(BTF types and line info), ``sections`` (section names to program types) and ``program``
(``ElfObject``, ``ProgramDef``, ``MapDef``: what a loaded object holds)."""
