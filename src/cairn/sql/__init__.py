"""The one SQL access layer for the rows cairn keeps beside the event log (read models,
checkpoints, saga state, idempotency records, the inbox): one connect per dialect
(:mod:`.sqlite`, :mod:`.postgres`), one transaction type (:mod:`.database`), ``?`` placeholders
and dict rows everywhere, one registry of ``.sql`` migrations (:mod:`.registry`) and one
connection budget per process (:mod:`.budget`)."""
