"""What the app writes down: the database (SQLite or PostgreSQL), the store, PII masking, insights.

Imports only `knowledge` (and `settings`, `errors`); never `search`.
"""
