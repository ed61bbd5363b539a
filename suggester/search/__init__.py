"""From chunks to ranked passages: embedding engines, Kiwi + BM25, the index, hybrid retrieval.

Imports only `knowledge` (and `settings`, `errors`); never `records`.
"""
