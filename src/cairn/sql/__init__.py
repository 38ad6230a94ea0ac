"""cairn's SQL access layer: what every component that keeps rows beside the log shares (SPEC
§11), starting with the one registry of ``.sql`` migrations (:mod:`cairn.sql.migrations`)."""
