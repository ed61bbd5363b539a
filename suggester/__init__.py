"""Suggester: a knowledge base and retrieval-assisted reply suggester for CX agents.

The package is laid out by pipeline stage, lowest first; a stage imports only stages below it
(`tests/test_layout.py` holds the order):

1. `knowledge`: the article format and its files (imports only `settings` and `errors`);
2. `search` and `records`: chunks to ranked passages; what the app writes down (each imports
   only `knowledge`, neither the other);
3. `reply`: a message and its passages to a reply (over both);
4. the workflows that span stages: `service` (a suggestion), `publish`, `publish_lock` and
   `replicate` (a publish), `routes`, and `operations` (what the team does with the
   inquiries beyond a reply: incidents raised from them; `service` calls it); then the entry
   points `cli` and `evaluation`.

`settings` and `errors` sit below everything.
"""

import os

# The e5 engine runs on OpenMP. Its default spin-waiting threads turn a 20 ms query embedding
# into 1.7 s as soon as another process wants the CPU (measured: p95 1,736 ms spinning vs
# 27 ms passive on 2 cores). libgomp reads this once, when the engine loads, so set it first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
