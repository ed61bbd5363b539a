"""From a message and its passages to a reply: analysis, composition, follow-ups, tone, the
optional LLM and the validator its drafts must pass.

Imports `knowledge`, `search` and `records`.
"""
