"""Consortium networking: genesis, authenticated links, gossip and catch-up, local testnets.

Several validator processes become one consortium (``docs/network.md``):
each runs a :class:`ConsortiumNode` — the ledger node of ``simtrust.ledger``
ordered by the committee of ``simtrust.ledger.consensus`` — connected to the
others over TLS 1.3 links with mutual authentication, whose node keys are
pinned in genesis. :class:`Testnet` starts N of them on loopback: the operator tool
behind ``simtrust testnet`` (``docs/decisions/network-testnet-launcher.md``).
"""

from simtrust.ledger.net._batch import MAX_BATCH, decode_batch, encode_batch
from simtrust.ledger.net._committee_orderer import BlockStore, CommitteeOrderer, LedgerCommit
from simtrust.ledger.net._epochs import (
    CHANGE_FORMAT,
    COMMITTEE_CHANGE_TAG,
    EpochCommittee,
    EpochStore,
    SignedCommitteeChange,
    change_message,
    sign_change,
)
from simtrust.ledger.net._explorer import render_tangle_svg, tangle_view
from simtrust.ledger.net._genesis import (
    ConsensusParams,
    NetworkGenesis,
    NodeKeys,
    ValidatorEntry,
    apply_peer_overrides,
    free_ports,
    generate_local_network,
    parse_address,
)
from simtrust.ledger.net._node import ConsortiumNode, NodeOptions
from simtrust.ledger.net._peers import PeerLimits, PeerNetwork, TokenBucket
from simtrust.ledger.net._testnet import NodeClient, NodeInfo, Testnet
from simtrust.ledger.net._transport import (
    HandshakeFailed,
    LinkIdentity,
    SecureLink,
    accept_link,
    link_certificate_name,
    open_link,
    verify_link_certificate,
)

__all__ = [
    "CHANGE_FORMAT",
    "COMMITTEE_CHANGE_TAG",
    "MAX_BATCH",
    "BlockStore",
    "CommitteeOrderer",
    "ConsensusParams",
    "ConsortiumNode",
    "EpochCommittee",
    "EpochStore",
    "HandshakeFailed",
    "LedgerCommit",
    "LinkIdentity",
    "NetworkGenesis",
    "NodeClient",
    "NodeInfo",
    "NodeKeys",
    "NodeOptions",
    "PeerLimits",
    "PeerNetwork",
    "SecureLink",
    "SignedCommitteeChange",
    "Testnet",
    "TokenBucket",
    "ValidatorEntry",
    "accept_link",
    "apply_peer_overrides",
    "change_message",
    "decode_batch",
    "encode_batch",
    "free_ports",
    "generate_local_network",
    "link_certificate_name",
    "open_link",
    "parse_address",
    "render_tangle_svg",
    "sign_change",
    "tangle_view",
    "verify_link_certificate",
]
