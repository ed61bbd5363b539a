"""The article format and its files: parse, lint, chunk, durable writes.

The lowest stage: it imports nothing of ours but `settings` and `errors`.
"""
