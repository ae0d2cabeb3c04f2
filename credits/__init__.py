"""The credits ledger: accounts, an append-only journal and reservations in one SQLite file."""
