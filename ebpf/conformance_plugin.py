"""`offload-bpf-plugin`: the reference VM as a bpf_conformance plugin.

Protocol (as the bpf_conformance runner drives its plugins): the program arrives as a hex
string on standard input (or with `--program HEX`), the memory as a hex string in the first
positional argument (may be empty or absent). The program runs with r1 = a pointer to the
memory, r2 = its length, r10 = the top of a 512-byte stack; r0 is printed in hex (no 0x) and
the exit status is 0. Any error (bad hex, an invalid instruction, a fault while running) is
one line on standard error and exit status 1.
"""

from __future__ import annotations

import argparse
import sys

from ebpf.code.isa import decode
from ebpf.errors import EbpfError
from ebpf.loader.program import Function, ProgramDef


def program_from_code(code: bytes, name: str = "conformance") -> ProgramDef:
    """A stand-alone program for raw bytecode: one function, no maps, no line info."""
    insns = decode(code)
    slots = sum(i.slots for i in insns)
    return ProgramDef(name, "", "unspec", insns, [Function(name, 0, slots, "")], {}, [],
                      own_slots=slots)


def run_hex(program_hex: str, memory_hex: str = "") -> int:
    """r0 after running ``program_hex`` on ``memory_hex``; raises EbpfError or ValueError."""
    from ebpf.vm.machine import Vm

    code = bytes.fromhex("".join(program_hex.split()))
    memory = bytes.fromhex("".join(memory_hex.split()))
    vm = Vm(None, program_from_code(code))
    return vm.run(memory).ret & 0xFFFFFFFFFFFFFFFF


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="offload-bpf-plugin", description=__doc__.split("\n")[0])
    parser.add_argument("memory", nargs="?", default="", help="memory as a hex string")
    parser.add_argument("--program", help="program as a hex string (default: stdin)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"offload-bpf-plugin: unexpected arguments: {' '.join(unknown)}", file=sys.stderr)
        return 1
    program_hex = args.program if args.program is not None else sys.stdin.readline()
    try:
        r0 = run_hex(program_hex, args.memory)
    except (EbpfError, ValueError) as exc:
        if args.debug:
            raise
        print(f"offload-bpf-plugin: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"{r0:x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
