"""Storage backends of the apiserver: a revisioned key-value store with watch.

Both backends (SQLite, etcd v3) implement `Storage` and pass the same test suite
(tests/integration/storage). Only the apiserver imports this package.
"""
