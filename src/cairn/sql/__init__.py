"""The one SQL access layer for the rows cairn keeps beside the event log (read models,
checkpoints, saga state, idempotency records, the inbox): one connect per dialect, one
transaction type, ``?`` placeholders and dict rows everywhere, one connection budget."""
