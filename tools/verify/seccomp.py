"""A seccomp filter for the code sandbox, compiled to classic BPF with no library.

bubblewrap loads it (``--seccomp FD``) just before it starts the sandboxed interpreter. The filter
refuses, with ``EPERM``, the system calls a program-of-thought never needs and an escape would:
new processes (``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``; ``clone3`` answers
``ENOSYS`` so the C library falls back to ``clone``, whose flags a filter can read), sockets,
namespaces and mounts, tracing other processes, the kernel keyring, BPF, perf, userfaultfd and
io_uring. Everything else is allowed: the namespaces and the read-only view are the boundary,
the filter narrows the kernel surface behind it. A foreign architecture or the x32 ABI kills the
process (a syscall number means something else there).

Only x86_64 has a table; elsewhere :func:`program` returns ``None`` and the sandbox runs without
this layer (``failforward sandbox-check`` says so).
"""

from __future__ import annotations

import errno
import platform
import struct

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
_CLONE_THREAD = 0x00010000

# x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl)
DENIED_X86_64 = {
    "socket": 41,
    "socketpair": 53,
    "fork": 57,
    "vfork": 58,
    "ptrace": 101,
    "personality": 135,
    "pivot_root": 155,
    "chroot": 161,
    "mount": 165,
    "umount2": 166,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "perf_event_open": 298,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "bpf": 321,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsmount": 432,
}
_CLONE, _CLONE3 = 56, 435

# Classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h)
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000
_NR, _ARCH, _ARG0_LOW = 0, 4, 16  # offsets in struct seccomp_data (little-endian)


def program() -> bytes | None:
    """The filter as the bytes of a ``struct sock_filter`` array, or ``None`` off x86_64.

    Example:
        >>> len(program()) % 8 == 0 if program() else True
        True
    """
    if platform.machine() != "x86_64":
        return None
    denied = _RET_ERRNO | errno.EPERM
    code: list[tuple[int, int, int, int]] = [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64),
        (_RET_K, 0, 0, _RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, _NR),
        (_JGE_K, 0, 1, _X32_BIT),
        (_RET_K, 0, 0, _RET_KILL_PROCESS),
        (_JEQ_K, 0, 1, _CLONE3),
        (_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS),
    ]
    for number in sorted(DENIED_X86_64.values()):
        code += [(_JEQ_K, 0, 1, number), (_RET_K, 0, 0, denied)]
    code += [
        (_JEQ_K, 0, 3, _CLONE),  # clone: a thread may start, a process may not
        (_LD_W_ABS, 0, 0, _ARG0_LOW),
        (_JSET_K, 1, 0, _CLONE_THREAD),
        (_RET_K, 0, 0, denied),
        (_RET_K, 0, 0, _RET_ALLOW),
    ]
    return b"".join(struct.pack("<HBBI", *instruction) for instruction in code)
