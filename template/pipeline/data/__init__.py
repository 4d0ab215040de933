"""The data the stages pass, and the pure functions that make it: batches of records and instances
(`batches`), dead letters (`dead_letters`), the record formats (`formats`) and their decoders
(`decoders`, `seed_lines`), values typed for a signature (`instances`) and output rows (`rows`).
No Beam, no I/O: every rule about records is testable directly.
"""
