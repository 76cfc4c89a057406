"""Consortium consensus: committee, validator blocks, the DAG commit rule.

The pure core of issue 7, specified in ``docs/consensus.md``: a Mysticeti-style
commit rule over an uncertified DAG of signed validator blocks. A ledger node
feeds message ids into proposals and consumes ``CommittedSubDag`` outputs as
its finalized order. The simulator that runs many cores in one deterministic
process is test gear: ``simtrust.testing.ledger.consensus_sim``.
"""

from ._block import (
    BLOCK_VERSION,
    MAX_BLOCK_BYTES,
    MAX_PARENTS,
    MAX_PAYLOAD_IDS,
    Block,
    BlockRef,
    block_signing_message,
)
from ._committee import (
    MAX_VALIDATORS,
    Committee,
    CommitteeChange,
    CommitteeChangeSignature,
    Validator,
    sign_committee_change,
    verify_committee_change,
)
from ._core import Core, Verifier
from ._history import CausalHistory
from ._outputs import (
    BlockAccepted,
    CommittedSubDag,
    EquivocationDetected,
    EquivocationProof,
    MissingBlocks,
    Output,
)

__all__ = [
    "BLOCK_VERSION",
    "MAX_BLOCK_BYTES",
    "MAX_PARENTS",
    "MAX_PAYLOAD_IDS",
    "MAX_VALIDATORS",
    "Block",
    "BlockAccepted",
    "BlockRef",
    "CausalHistory",
    "CommittedSubDag",
    "Committee",
    "CommitteeChange",
    "CommitteeChangeSignature",
    "Core",
    "EquivocationDetected",
    "EquivocationProof",
    "MissingBlocks",
    "Output",
    "Validator",
    "Verifier",
    "block_signing_message",
    "sign_committee_change",
    "verify_committee_change",
]
