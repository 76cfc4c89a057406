"""Which worker process's socket the kernel hands a RADIUS datagram to.

The RADIUS worker processes each hold one UDP socket bound to the same port
with ``SO_REUSEPORT``. Left to itself the kernel picks the socket by a hash
of the source and destination address and port, so every datagram of one
gateway source port lands on one worker: a gateway sending from one port
(radclient, and the bench's closed loop) would keep one core busy and leave
the others idle. A classic BPF program attached to the group
(``SO_ATTACH_REUSEPORT_CBPF``, Linux ≥ 4.5; the program sees the UDP payload
and returns the index of the socket in the group, an index beyond the group
falling back to the hash) picks instead:

* **Access-Request with a State attribute** (RFC 2865 §5.24, an EAP
  conversation's later rounds, RFC 3579 §2.1): the first octet of State. The
  worker that opened the conversation wrote its own index there, so every
  round returns to the worker holding the conversation in memory. A State
  that names no worker (a forged or foreign one) falls back to the hash, and
  the worker it lands on finds no conversation and answers EAP-Failure.
* **Accounting-Request with an Acct-Session-Id** (RFC 2866 §5.5): the last
  octet of the session id modulo the number of workers, so the Start,
  Interim-Updates and Stop of one session are recorded and metered against
  the volume caps by one worker, in order.
* **Anything else** (the first round of an EAP conversation, PAP or CHAP,
  Accounting-On/Off): the first octet of the Request Authenticator (RFC 2865
  §3: random for an Access-Request, an MD5 output for accounting) modulo the
  number of workers: an even spread whatever the source port.

All three are functions of the datagram's content, so a retransmission (same
identifier, authenticator and attributes, RFC 5080 §2.2.1) reaches the same
worker as the first copy, whichever source port it comes from, and that
worker's duplicate cache answers it. The attribute walk is unrolled (classic
BPF jumps only forward) over the first :data:`STEPS` attributes; past those,
the fallback applies. docs/decisions/aaa-workers.md has the measurements.
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct

__all__ = ["MAX_WORKERS", "STEPS", "attach_steering", "steered_sockets", "steering_program",
           "udp_socket"]

SO_ATTACH_REUSEPORT_CBPF = 51  # include/uapi/asm-generic/socket.h
STEPS = 48  # attributes walked before falling back
MAX_WORKERS = 256  # a worker index must fit State's first octet

_STATE = 24  # RFC 2865 §5.24
_ACCT_SESSION_ID = 44  # RFC 2866 §5.5
_AUTHENTICATOR = 4  # offset of the Request Authenticator's first octet
_FIRST_ATTRIBUTE = 20

# Classic BPF opcodes (include/uapi/linux/filter.h, bpf_common.h).
_LD_LEN = 0x80  # A = packet length
_LD_MEM = 0x60  # A = M[k]
_LDX_MEM = 0x61  # X = M[k]
_LDX_IMM = 0x01  # X = k
_ST = 0x02  # M[k] = A
_STX = 0x03  # M[k] = X
_LDB_ABS = 0x30  # A = P[k]
_LDB_IND = 0x50  # A = P[X + k]
_ADD_K = 0x04
_ADD_X = 0x0C
_SUB_K = 0x14
_MOD_K = 0x94
_TAX = 0x07
_JA = 0x05
_JEQ_K = 0x15
_JGE_K = 0x35
_JGT_X = 0x2D
_RET_A = 0x16

_Insn = tuple[int, str | int, str | int, int | str]


def _assemble(program: list[_Insn | str]) -> list[tuple[int, int, int, int]]:
    """Resolve labels (strings in the list) and label references (jt/jf, or k of a
    ``ja``) to forward offsets."""
    labels: dict[str, int] = {}
    code: list[_Insn] = []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(code)
        else:
            code.append(item)
    def rel(pc: int, target: str | int) -> int:
        if isinstance(target, int):
            return target
        offset = labels[target] - pc - 1
        if offset < 0:
            raise ValueError("classic BPF jumps only forward")
        return offset

    out = []
    for pc, (op, jt, jf, k) in enumerate(code):
        if op == _JA:
            out.append((op, 0, 0, rel(pc, k)))
        else:
            if max(rel(pc, jt), rel(pc, jf)) > 255:
                raise ValueError("conditional jump too far")
            out.append((op, rel(pc, jt), rel(pc, jf), int(k)))
    return out


def steering_program(kind: str, workers: int) -> list[tuple[int, int, int, int]]:
    """The classic BPF program steering ``kind`` (``auth`` or ``acct``) datagrams over
    ``workers`` sockets, as (code, jt, jf, k) instructions."""
    if kind not in ("auth", "acct"):
        raise ValueError("kind must be auth or acct")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be 1 to {MAX_WORKERS}")
    wanted = _STATE if kind == "auth" else _ACCT_SESSION_ID
    prog: list[_Insn | str] = [
        (_LD_LEN, 0, 0, 0), (_ST, 0, 0, 1),  # M[1] = length of the RADIUS payload
        (_LDX_IMM, 0, 0, _FIRST_ATTRIBUTE), (_STX, 0, 0, 0),  # M[0] = offset of an attribute
    ]
    for step in range(STEPS):
        fb, found, nxt = f"fb{step}", f"found{step}", f"step{step + 1}"
        prog += [
            (_LDX_MEM, 0, 0, 1), (_LD_MEM, 0, 0, 0), (_ADD_K, 0, 0, 2),
            (_JGT_X, fb, 0, 0),  # no room for another attribute header: fall back
            (_LDX_MEM, 0, 0, 0), (_LDB_IND, 0, 0, 0),
            (_JEQ_K, found, 0, wanted),
            (_LDB_IND, 0, 0, 1), (_JGE_K, 0, fb, 2),  # a length under 2 is malformed
            (_ADD_X, 0, 0, 0), (_ST, 0, 0, 0),
            (_JA, 0, 0, nxt),
            fb, (_JA, 0, 0, "fallback"),
            found, (_JA, 0, 0, "found"),
            nxt,
        ]
    prog += ["found", (_LDB_IND, 0, 0, 1), (_JGE_K, 0, "fallback", 3)]  # X: its offset
    if kind == "auth":
        # State's first octet: the worker's index (beyond the group: the kernel's hash).
        prog += [(_LDB_IND, 0, 0, 2), (_RET_A, 0, 0, 0)]
    else:
        # The session id's last octet, at offset + length - 1.
        prog += [(_ADD_X, 0, 0, 0), (_SUB_K, 0, 0, 1), (_TAX, 0, 0, 0),
                 (_LDB_IND, 0, 0, 0), (_MOD_K, 0, 0, workers), (_RET_A, 0, 0, 0)]
    prog += ["fallback", (_LDB_ABS, 0, 0, _AUTHENTICATOR), (_MOD_K, 0, 0, workers),
             (_RET_A, 0, 0, 0)]
    return _assemble(prog)


def attach_steering(sock: socket.socket, kind: str, workers: int) -> None:
    """Attach the steering program to the ``SO_REUSEPORT`` group of ``sock`` (bound)."""
    code = steering_program(kind, workers)
    raw = b"".join(struct.pack("HBBI", *insn) for insn in code)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HL", len(code), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


def udp_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A UDP socket bound to ``host:port`` with a 4 MiB receive buffer (if allowed);
    ``reuse_port``: joins the ``SO_REUSEPORT`` group of that address (RADIUS workers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    with contextlib.suppress(OSError):  # a smaller buffer still works
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def steered_sockets(host: str, port: int, kind: str, count: int) -> list[socket.socket]:
    """``count`` UDP sockets bound to ``host:port`` (port 0: one chosen by the kernel) in
    one ``SO_REUSEPORT`` group, in index order, with the steering program attached: the
    socket at index ``i`` is worker ``i``'s."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = udp_socket(host, port, reuse_port=True)
            socks.append(sock)
            port = int(sock.getsockname()[1])
        attach_steering(socks[0], kind, count)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks
