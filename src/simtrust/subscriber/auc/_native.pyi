"""Types of the C extension ``_native.c`` (batched HMAC-SHA-256, TS 33.220 B.2; Keccak-f)."""

from typing_extensions import Buffer

from simtrust.subscriber.auc.vectors import EpsVector, HeAv5g

__all__ = ["eps_batch", "he_av_batch", "hmac_sha256_batch", "keccak_f1600", "tuak_core",
           "tuak_kernel_batch"]

def eps_batch(
    raw: Buffer, rands: Buffer, sn_id: Buffer, amf: Buffer, cls: type[EpsVector], /
) -> list[EpsVector]: ...
def he_av_batch(
    raw: Buffer, rands: Buffer, sn_name: Buffer, amf: Buffer, cls: type[HeAv5g], /
) -> list[HeAv5g]: ...
def hmac_sha256_batch(keys: Buffer, messages: Buffer, count: int, /) -> bytes: ...
def keccak_f1600(state: Buffer, iterations: int, /) -> bytes: ...
def tuak_core(
    top: Buffer, instance: int, rand: Buffer, amf: Buffer, sqn: Buffer, k: Buffer,
    iterations: int, /,
) -> bytes: ...
def tuak_kernel_batch(
    topc: Buffer, k: Buffer, inst_mac: int, inst_f2345: int, rands: Buffer, sqns: Buffer,
    amf: Buffer, iterations: int, /,
) -> bytes: ...
