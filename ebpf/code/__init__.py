"""eBPF code as data: ``isa`` (the instruction set, defined once as a table), ``asm`` (the
assembler), ``disasm`` (the disassembler, llvm-objdump's syntax), ``listing`` (disassembly
with source lines) and ``rewrite`` (splicing instructions into linked programs, the injected clock)."""
