"""Tests of ebpf.analysis (programs from assembler text: tests.offload.analysis.asm_program)."""
