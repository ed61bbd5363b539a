"""From chunks to ranked passages: embedding engines, Kiwi + BM25, the index, exact dense search,
hybrid retrieval.

Imports only `knowledge` (and `settings`, `errors`); never `records`.
"""
