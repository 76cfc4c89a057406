"""simtrust.ledger: the tangle, UTXO value, anchors and the ordering seam (docs/ledger.md).

One node ingests signed messages (``LedgerNode.submit_many``), keeps the
tangle and its tips, orders finalized messages through an :class:`Orderer`
(``SoloOrderer`` when it is the only validator) and applies them, in that
order only, to the handlers registered per payload type.
"""

from simtrust.ledger._chain import chain_genesis, chain_step
from simtrust.ledger._codec import (
    MAX_MESSAGE_SIZE,
    MAX_PARENTS,
    PAYLOAD_NAMES,
    Anchor,
    Foundry,
    Message,
    Opaque,
    Output,
    PayloadType,
    TaggedData,
    Transaction,
    Unlock,
    decode_message,
    encode_anchor,
    encode_tagged_data,
    encode_transaction,
    message_id,
    network_id_from_name,
    output_id,
    payload_code,
    signing_bytes,
)
from simtrust.ledger._keys import Ed25519Signer, verify_ed25519, verify_ed25519_ok
from simtrust.ledger._node import (
    CommitRecord,
    LedgerConfig,
    LedgerNode,
    StateSnapshot,
    SubmitResult,
)
from simtrust.ledger._orderer import (
    CommittedSubDag,
    CommittedSubDagLike,
    FinalizedHandler,
    FinalizedMessage,
    Orderer,
    SoloOrderer,
)
from simtrust.ledger._pool import verify_chunk
from simtrust.ledger._runtime import node_signer, open_ledger_node
from simtrust.ledger._utxo import Balance, Genesis, foundry_token_id
from simtrust.ledger._views import (
    balance_json,
    message_json,
    output_json,
    parse_hex_id,
    parse_public_key,
)

__all__ = [
    "MAX_MESSAGE_SIZE",
    "MAX_PARENTS",
    "PAYLOAD_NAMES",
    "Anchor",
    "Balance",
    "CommitRecord",
    "CommittedSubDag",
    "CommittedSubDagLike",
    "Ed25519Signer",
    "FinalizedHandler",
    "FinalizedMessage",
    "Foundry",
    "Genesis",
    "LedgerConfig",
    "LedgerNode",
    "Message",
    "Opaque",
    "Orderer",
    "Output",
    "PayloadType",
    "SoloOrderer",
    "StateSnapshot",
    "SubmitResult",
    "TaggedData",
    "Transaction",
    "Unlock",
    "balance_json",
    "chain_genesis",
    "chain_step",
    "decode_message",
    "encode_anchor",
    "encode_tagged_data",
    "encode_transaction",
    "foundry_token_id",
    "message_id",
    "message_json",
    "network_id_from_name",
    "node_signer",
    "open_ledger_node",
    "output_id",
    "output_json",
    "parse_hex_id",
    "parse_public_key",
    "payload_code",
    "signing_bytes",
    "verify_chunk",
    "verify_ed25519",
    "verify_ed25519_ok",
]
