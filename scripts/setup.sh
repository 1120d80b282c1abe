#!/usr/bin/env bash
# One-step, idempotent setup: Debian packages the project needs, then the .venv.
# Not root and something missing: one line naming what to install, exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."

# clang/llvm: BPF target and llvm-objdump; libbpf-dev: bpf_helpers.h and libbpf.so;
# linux-libc-dev: <asm/types.h>; bpftool: map definitions cross-check; iverilog/yosys: RTL;
# python3-venv: the virtualenv; chromium: report rendering checks; graphviz: the report's
# CFG drawings (dot); fonts-dejavu-core: text in Chromium's rendering; iproute2: the FIB
# namespace of `offload diff`.
SYSTEM_PACKAGES=(make clang llvm libbpf-dev linux-libc-dev bpftool iverilog yosys
                 python3 python3-venv python3-dev gcc chromium graphviz fonts-dejavu-core
                 iproute2)

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "setup: missing system packages; run: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    echo "setup: installing Python dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[hw,dev]"
    touch "$stamp"
fi
