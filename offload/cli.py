"""The `offload` command line: one subcommand per job, errors as one line with exit 2."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ebpf.display import printable
from ebpf.errors import EbpfError
from ebpf.kernel.results import KernelLoadError
from hw.errors import HwError
from offload.check_cmd import register as register_check
from offload.cleanup import Terminated, terminate_as_interrupt
from offload.cli_args import OneLineParser
from offload.errors import MapperError
from offload.map_cmd import register as register_map
from offload.report.report_cmd import register as register_report
from offload.rtl_cmd import register as register_rtl
from offload.run_cmd import register as register_run
from offload.sim_cmd import register as register_sim
from offload.sweep_cmd import register as register_sweep
from offload.targets_cmd import register as register_targets
from rtl_models.errors import CosimError
from sim.errors import SimError

EXIT_BAD_INPUT = 2
# Every package's root error: what the CLI turns into one line and exit status 2.
USER_ERRORS: tuple[type[BaseException], ...] = (EbpfError, HwError, SimError,
                                                  MapperError, CosimError)


class CliError(Exception):
    """Bad command-line input that no package raised (e.g. an unreadable output path)."""


def write_atomically(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write a file whole or not at all (temp file in the same folder, then rename)."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    # not mkstemp (mode 0600): created 0666 so that the kernel applies the user's umask
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _print_json(doc: object) -> None:
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


# --- inspect / disasm / asm ---------------------------------------------------------------

def cmd_inspect(args: argparse.Namespace) -> int:
    from offload.inspect import inspect_doc, render_inspect

    docs = [inspect_doc(path, source=args.source) for path in args.objects]
    if args.json:
        _print_json(docs[0] if len(docs) == 1 else docs)
    else:
        render_inspect(docs, source=args.source)
    return 0


def cmd_disasm(args: argparse.Namespace) -> int:
    from ebpf.code.disasm import format_listing
    from ebpf.code.isa import decode
    from ebpf.code.listing import objdump

    path = args.file
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: cannot read: {exc.strerror}") from exc
    if data[:4] == b"\x7fELF":
        if args.syntax == "ubpf":
            from ebpf.code.asm import disassemble
            from ebpf.loader.elf import load_bytes

            obj = load_bytes(data, path)
            for prog in obj.programs:
                sys.stdout.write(f"# {printable(prog.name)} ({printable(prog.section)})\n")
                sys.stdout.write(disassemble(prog.insns))
            return 0
        sys.stdout.write(objdump(path))
        return 0
    try:
        insns = decode(data)
    except EbpfError as exc:
        raise type(exc)(f"{path}: {exc}") from exc
    if args.syntax == "ubpf":
        from ebpf.code.asm import disassemble

        sys.stdout.write(disassemble(insns))
    else:
        sys.stdout.write("\n".join(format_listing(insns)) + "\n")
    return 0


def cmd_asm(args: argparse.Namespace) -> int:
    from ebpf.code.asm import assemble
    from ebpf.errors import AsmError

    path = args.file
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read: {exc}") from exc
    try:
        code = assemble(text)
    except AsmError as exc:
        raise AsmError(f"{path}: {exc}") from exc
    out = args.output or str(Path(path).with_suffix(".bin"))
    if out == "-":
        sys.stdout.buffer.write(code)
    else:
        write_atomically(out, code)
        print(f"{printable(out)}: {len(code) // 8} slots", file=sys.stderr)
    return 0


# --- parser -------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="offload",
        description="XDP offload simulator: inspect, execute, map and simulate XDP programs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("inspect", help="programs, maps and helpers of BPF objects")
    p.add_argument("objects", nargs="+", metavar="PROG.o")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--source", action="store_true",
                   help="disassembly interleaved with C source lines")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("disasm", help="disassemble an ELF object or raw bytecode")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--syntax", choices=("llvm", "ubpf"), default="llvm",
                   help="llvm-objdump syntax (default) or the assembler's uBPF syntax")
    p.set_defaults(func=cmd_disasm)

    p = sub.add_parser("asm", help="assemble uBPF-syntax text into raw bytecode")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file (default: FILE with suffix .bin; '-' for stdout)")
    p.set_defaults(func=cmd_asm)

    for register in EXTRA_COMMANDS:
        register(sub)
    return parser


# Later subsystems add their subcommands here: callables taking the subparsers object.
EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [register_run, register_targets,
                                                                   register_check, register_sim,
                                                                   register_report, register_map,
                                                                   register_rtl, register_sweep]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        with terminate_as_interrupt():
            return args.func(args)
    except BrokenPipeError:
        return 0
    except (*USER_ERRORS, CliError, OSError) as exc:
        if args.debug:
            if isinstance(exc, KernelLoadError) and exc.log:
                print(exc.log, file=sys.stderr, end="" if exc.log.endswith("\n") else "\n")
            raise
        # Names in the message are escaped (package errors do it themselves: PrintableError).
        message = printable(exc) or type(exc).__name__
        print(f"offload: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Terminated as exc:  # SIGTERM / SIGHUP: cleaned up like Ctrl-C
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
