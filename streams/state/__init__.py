"""Per-customer profile state: its bytes, the local RocksDB store, its restore from the
changelog."""
