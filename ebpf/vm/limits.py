"""The VM's fixed numbers: register masks, the kernel's limits, the pseudo-address bases,
and the two pc values a handler returns instead of a slot."""


M64 = 0xFFFFFFFFFFFFFFFF
M32 = 0xFFFFFFFF

MAX_CALL_FRAMES = 8  # include/linux/bpf_verifier.h
MAX_TAIL_CALL_CNT = 33  # include/linux/bpf.h
STACK_SIZE = 512  # MAX_BPF_STACK
DEFAULT_BUDGET = 1_000_000
BPF_F_RDONLY_PROG = 1 << 7
MAP_PTR_BASE = 0x7F00_0000_0000_0000  # struct bpf_map * values (not dereferenceable)
MAP_PTR_STRIDE = 0x1_0000
FUNC_PTR_BASE = 0x7E00_0000_0000_0000  # PseudoSrc.FUNC code addresses
FUNC_PROG_STRIDE = 1 << 24

STOP = -1  # returned by a handler: the program has exited
SWITCH = -2  # returned by a handler: continue at vm._pc in vm._code (another program)
