"""Micropayments for per-event charging: signed cumulative vouchers, one ledger output per period.

Each charged event (an SMS, an API call, a kilobyte of a sensor's data) gets a
voucher the payer signs: channel, period, a sequence number and the cumulative
amount so far (RFC 8785 JSON, Ed25519, parties as ``did:key``). The payee keeps
only the latest; at the end of the period the stream is aggregated (every
voucher verified, sequence and cumulative amount strictly increasing) and paid
with one token transfer of the final cumulative amount, instead of one ledger
transaction per event.
"""

from __future__ import annotations

import base64
from typing import Any

import rfc8785

from simtrust.errors import DecodeError, InvalidInput
from simtrust.identity import decode_multikey, did_key
from simtrust.ledger import Ed25519Signer, verify_ed25519

__all__ = ["VOUCHER_TYPE", "MicropaymentStream", "aggregate_vouchers"]

VOUCHER_TYPE = "MicropaymentVoucher"


def _signing_bytes(voucher: dict[str, Any]) -> bytes:
    return rfc8785.dumps({k: v for k, v in voucher.items() if k != "signature"})


class MicropaymentStream:
    """The payer's side of one channel and period: every charge is a new signed voucher."""

    __slots__ = ("_base", "_cumulative", "_seq", "_signer")

    def __init__(self, payer: Ed25519Signer, payee: str, channel: str, period: str,
                 currency: str) -> None:
        if not payee.startswith("did:key:"):
            raise InvalidInput("the payee must be a did:key")
        self._signer = payer
        self._base = {"type": VOUCHER_TYPE, "channel": channel, "period": period,
                      "payer": did_key(payer.public_key), "payee": payee, "currency": currency}
        self._seq = 0
        self._cumulative = 0

    @classmethod
    def resume(cls, payer: Ed25519Signer, last: dict[str, Any]) -> MicropaymentStream:
        """Continue the stream whose latest voucher is ``last`` (it must be ``payer``'s)."""
        _verify(last)
        if last.get("payer") != did_key(payer.public_key):
            raise InvalidInput("the last voucher was signed by another payer")
        seq, cumulative = last.get("seq"), last.get("cumulative_minor_units")
        if isinstance(seq, bool) or not isinstance(seq, int) or isinstance(
            cumulative, bool
        ) or not isinstance(cumulative, int):
            raise InvalidInput("the last voucher needs an integer seq and cumulative amount")
        stream = cls(payer, str(last.get("payee")), str(last.get("channel")),
                     str(last.get("period")), str(last.get("currency")))
        stream._seq, stream._cumulative = seq, cumulative
        return stream

    def charge(self, amount_minor_units: int) -> dict[str, Any]:
        """Sign the voucher after one more event costing ``amount_minor_units``."""
        if amount_minor_units <= 0:
            raise InvalidInput("a charge is a positive amount")
        self._seq += 1
        self._cumulative += amount_minor_units
        voucher = {**self._base, "seq": self._seq, "cumulative_minor_units": self._cumulative}
        signature = self._signer.sign(_signing_bytes(voucher))
        return {**voucher, "signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode()}


def _verify(voucher: dict[str, Any]) -> None:
    if voucher.get("type") != VOUCHER_TYPE:
        raise InvalidInput(f"not a {VOUCHER_TYPE}")
    payer = voucher.get("payer")
    if not isinstance(payer, str) or not payer.startswith("did:key:"):
        raise InvalidInput("a voucher's payer must be a did:key")
    text = str(voucher.get("signature", ""))
    try:
        signature = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise DecodeError("a voucher's signature is not base64url") from None
    _, public = decode_multikey(payer.removeprefix("did:key:"))
    verify_ed25519(public, signature, _signing_bytes(voucher))


def aggregate_vouchers(vouchers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One settlement per channel and period: the last cumulative amount of its vouchers.

    Every voucher must verify; within a channel and period the payer, payee and
    currency stay fixed and sequence numbers and cumulative amounts strictly increase.
    """
    streams: dict[tuple[str, str], dict[str, Any]] = {}
    for voucher in vouchers:
        _verify(voucher)
        seq, cumulative = voucher.get("seq"), voucher.get("cumulative_minor_units")
        if not isinstance(seq, int) or not isinstance(cumulative, int) or cumulative <= 0:
            raise InvalidInput("a voucher needs an integer seq and a positive cumulative amount")
        key = (str(voucher.get("channel")), str(voucher.get("period")))
        last = streams.get(key)
        if last is None:
            streams[key] = {"channel": key[0], "period": key[1], "payer": voucher["payer"],
                            "payee": voucher["payee"], "currency": voucher["currency"],
                            "events": 1, "seq": seq, "total_minor_units": cumulative}
            continue
        if (voucher["payer"], voucher["payee"], voucher["currency"]) != (
            last["payer"], last["payee"], last["currency"]
        ):
            raise InvalidInput(f"channel {key[0]}: parties or currency changed mid-period")
        if seq <= last["seq"] or cumulative <= last["total_minor_units"]:
            raise InvalidInput(f"channel {key[0]}: vouchers must strictly increase")
        last.update(events=last["events"] + 1, seq=seq, total_minor_units=cumulative)
    return [
        {k: v for k, v in stream.items() if k != "seq"} | {"last_seq": stream["seq"]}
        for stream in streams.values()
    ]
