"""A local energy market: a periodic double auction at one price, delivery from meters,
payment per interval.

Prosumers post bids (to buy) and offers (to sell) for one metering interval:
energy in watt-hours and a limit price in minor currency units per kWh (integers
only, so every party recomputes the same result). :func:`clear` is a uniform
price double auction (the k = ½ rule of Satterthwaite and Williams): bids from
the highest price down and offers from the lowest up are matched while the bid
is at least the offer; the price is the midpoint, rounded down, of the last
matched bid and offer, so it lies between them and no matched party trades
beyond its limit. Ties go to the earlier order, then the party id.

After the interval, :func:`settle` checks delivery against the meters: a
seller's delivered energy is its register increase over the interval from
readings whose confidence score reaches the market's threshold (a reading
below it does not count, and the whole delivery of that meter is refused);
each trade is paid for what was delivered, ``delivered_wh × price / 1000``
rounded half up, through the transfer function the caller gives (a ledger
token transfer: one micropayment per trade and interval).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction

from simtrust.errors import InvalidInput

__all__ = ["Clearing", "Order", "Payment", "Trade", "clear", "delivered_wh", "settle"]


@dataclass(frozen=True, slots=True)
class Order:
    party: str
    side: str  # "buy" or "sell"
    wh: int
    price: int  # minor units per kWh

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise InvalidInput(f"side must be buy or sell, not {self.side!r}")
        if self.wh <= 0 or self.price < 0:
            raise InvalidInput("energy is positive and the price non-negative")


@dataclass(frozen=True, slots=True)
class Trade:
    seller: str
    buyer: str
    wh: int


@dataclass(frozen=True, slots=True)
class Clearing:
    price: int | None  # None when nothing crosses
    trades: tuple[Trade, ...]

    @property
    def volume_wh(self) -> int:
        return sum(t.wh for t in self.trades)


@dataclass(frozen=True, slots=True)
class Payment:
    buyer: str
    seller: str
    delivered_wh: int
    amount: int


def clear(orders: Iterable[Order]) -> Clearing:
    """Uniform-price double auction over one interval's orders."""
    indexed = list(enumerate(orders))
    bids = sorted((o for o in indexed if o[1].side == "buy"),
                  key=lambda item: (-item[1].price, item[0], item[1].party))
    asks = sorted((o for o in indexed if o[1].side == "sell"),
                  key=lambda item: (item[1].price, item[0], item[1].party))
    trades: list[Trade] = []
    i = j = 0
    bid_left = bids[0][1].wh if bids else 0
    ask_left = asks[0][1].wh if asks else 0
    last_bid = last_ask = None
    while i < len(bids) and j < len(asks) and bids[i][1].price >= asks[j][1].price:
        bid, ask = bids[i][1], asks[j][1]
        quantity = min(bid_left, ask_left)
        trades.append(Trade(ask.party, bid.party, quantity))
        last_bid, last_ask = bid.price, ask.price
        bid_left -= quantity
        ask_left -= quantity
        if bid_left == 0:
            i += 1
            bid_left = bids[i][1].wh if i < len(bids) else 0
        if ask_left == 0:
            j += 1
            ask_left = asks[j][1].wh if j < len(asks) else 0
    if last_bid is None or last_ask is None:
        return Clearing(None, ())
    return Clearing((last_bid + last_ask) // 2, tuple(trades))


def delivered_wh(readings: Iterable[tuple[int, int, Fraction]], start: int, end: int,
                 threshold: Fraction) -> int:
    """Register increase over [start, end] from ``(at, register_wh, score)`` readings.

    Needs a reading at or before ``start`` and one at or after ``end``, each scoring
    at least ``threshold``; otherwise the delivery is refused (:class:`InvalidInput`).
    """
    usable = sorted((at, wh) for at, wh, score in readings if score >= threshold)
    before = [wh for at, wh in usable if at <= start]
    after = [wh for at, wh in usable if at >= end]
    if not before or not after:
        raise InvalidInput("no trusted readings bracket the interval")
    increase = after[0] - before[-1]
    if increase < 0:
        raise InvalidInput("the register went backwards over the interval")
    return increase


def settle(clearing: Clearing, delivered: Mapping[str, int],
           transfer: Callable[[str, str, int], object]) -> list[Payment]:
    """Pay each trade for the energy its seller delivered (in trade order)."""
    if clearing.price is None:
        return []
    left = dict(delivered)
    payments = []
    for trade in clearing.trades:
        wh = min(trade.wh, left.get(trade.seller, 0))
        left[trade.seller] = left.get(trade.seller, 0) - wh
        amount = (wh * clearing.price * 2 + 1000) // 2000  # half up
        payments.append(Payment(trade.buyer, trade.seller, wh, amount))
        if amount:
            transfer(trade.buyer, trade.seller, amount)
    return payments
