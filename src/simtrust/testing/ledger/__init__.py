"""Ledger test gear: the consensus simulator and the pre-signed ingest workload.

``consensus_sim`` runs many consensus cores in one deterministic process
(``docs/consensus.md`` §9); ``workload`` builds the signed message lanes of
``bench/bench_ledger_ingest.py``. Both stand on the public surface of
``simtrust.ledger`` and ``simtrust.ledger.consensus`` only.
"""

__all__: list[str] = []
