"""Export a sentence-transformers model to one ONNX graph and check it (build step only).

Run by scripts/install-embeddinggemma.sh inside its throwaway venv (torch, transformers,
sentence-transformers); the app itself never imports this file. The graph takes `input_ids`
and `attention_mask` and returns the model's final `sentence_embedding` (transformer, pooling,
dense layers and normalisation in one), so serving needs only onnxruntime and the tokenizer.

The exported graph is checked against sentence-transformers (cosine >= 0.999), then its weights
are quantized to int8 (onnxruntime dynamic quantization, per channel, of the MatMuls and of the
token-embedding Gather): 310 MB instead of 1.2 GB, a third of the memory, a query about 2.5x
faster, vectors at cosine >= 0.98 to the float ones, and retrieval on the golden set that holds
(README, "Dense models"). `--precision fp32` keeps the float graph.

    python export_embeddinggemma.py SOURCE_DIR OUT_DIR [--precision int8|fp32]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer

# The app's padding, so the check covers what serving feeds the graph (numpy only, no app deps).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from suggester.search.gemma import padded  # noqa: E402

# Korean and English, short and long: what the KB and the customers write.
REFERENCE_QUERIES = ["반품 신청은 어떻게 하나요?", "판매자가 카톡으로 계좌이체 하자는데 괜찮아요?"]
REFERENCE_DOCUMENTS = [
    "구매 확정 전이라면 상품 수령 후 3일 안에 반품을 신청할 수 있어요.",
    "Settlement is paid three business days after the buyer confirms the purchase.",
    "정산금은 구매 확정일로부터 3영업일 안에 등록하신 계좌로 입금돼요. 공휴일과 주말은 "
    "영업일에 포함되지 않아요.",
]
MAX_TOKENS = 512  # what the app embeds at most: a KB chunk or a chat message fits
# How close to sentence-transformers each graph must stay on the reference texts. The float
# export reproduces it; int8 weights measured 0.980 at worst (Korean and English, short and long).
MIN_COSINE = {"fp32": 0.999, "int8": 0.97}


class SentenceEmbedding(torch.nn.Module):
    """The whole sentence-transformers pipeline as one module of tensors.

    The attention masks are built here, not by transformers: its mask helpers use vmap, which
    the exporter cannot trace. EmbeddingGemma attends both ways; its sliding-window layers see
    tokens closer than `window`, which covers the whole of a text cut to MAX_TOKENS.
    """

    def __init__(self, model: SentenceTransformer) -> None:
        super().__init__()
        modules = list(model)
        self.transformer = modules[0].auto_model
        self.head = torch.nn.ModuleList(modules[1:])  # pooling, dense layers, normalisation
        self.output_name = getattr(modules[0], "module_output_name", "token_embeddings")
        self.window = int(getattr(self.transformer.config, "sliding_window", None) or 1 << 30)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        width = input_ids.shape[1]
        keep = attention_mask.bool()[:, None, None, :].expand(-1, 1, width, width)
        position = torch.arange(width, device=input_ids.device)
        near = (position[:, None] - position[None, :]).abs() < self.window
        blocked = torch.finfo(torch.float32).min
        masks = {"full_attention": torch.where(keep, 0.0, blocked),
                 "sliding_attention": torch.where(keep & near, 0.0, blocked)}
        hidden = self.transformer(input_ids=input_ids, attention_mask=masks).last_hidden_state
        features = {self.output_name: hidden, "token_embeddings": hidden,
                    "attention_mask": attention_mask}
        for module in self.head:
            features = module(features)
        return features["sentence_embedding"]


def special_ids(model: SentenceTransformer, tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """The ids sentence-transformers puts before and after a text's own tokens."""
    text = REFERENCE_DOCUMENTS[0]
    full = model.tokenizer(text)["input_ids"]
    bare = tokenizer.encode(text, add_special_tokens=False).ids
    start = next(i for i in range(len(full)) if full[i:i + len(bare)] == bare)
    return full[:start], full[start + len(bare):]


def encode(tokenizer: Tokenizer, texts: list[str], prefix: list[int],
           suffix: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Tokenize and pad as the app does: the same ids, padded by the app's own function."""
    return padded([prefix + tokenizer.encode(t, add_special_tokens=False).ids + suffix
                   for t in texts])


def export(model: SentenceTransformer, path: Path, ids: np.ndarray, mask: np.ndarray) -> None:
    wrapper = SentenceEmbedding(model).eval()
    sample = (torch.from_numpy(ids), torch.from_numpy(mask))
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "sentence_embedding": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(wrapper, sample, str(path), input_names=["input_ids", "attention_mask"],
                          output_names=["sentence_embedding"], dynamic_axes=axes,
                          opset_version=18, dynamo=False)


def check(path: Path, ids: np.ndarray, mask: np.ndarray, reference: np.ndarray,
          minimum: float) -> float:
    """The graph's worst cosine to sentence-transformers' vectors; exit below `minimum`."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # One padded batch and each text alone: padding must not change a vector.
    batched = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    single = np.vstack([session.run(None, {"input_ids": i[m == 1][None],
                                           "attention_mask": m[m == 1][None]})[0]
                        for i, m in zip(ids, mask, strict=True)])
    worst = 1.0
    for name, got in (("batched", batched), ("one by one", single)):
        cosine = np.sum(got * reference, axis=1) / (
            np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1))
        print(f"export: {path.name} cosine to sentence-transformers ({name}): "
              f"min {cosine.min():.6f}", flush=True)
        if cosine.min() < minimum:
            sys.exit(f"export: the ONNX model disagrees with sentence-transformers ({name}): "
                     f"cosine {cosine.min():.6f} < {minimum}")
        worst = min(worst, float(cosine.min()))
    return worst


def quantize(path: Path) -> None:
    """Replace the float graph at `path` by its int8 form (weights only; activations are
    quantized per call). Per-channel scales keep the MatMuls closer to the float ones (worst
    reference cosine 0.983 against 0.977 per tensor); the Gather is the 262k-token embedding
    table, 800 MB of the 1.2 GB."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    print("export: quantizing the weights to int8 (a minute)", flush=True)
    floating = path.with_name("model-fp32.onnx")
    path.rename(floating)
    quantize_dynamic(str(floating), str(path), op_types_to_quantize=["MatMul", "Gather"],
                     weight_type=QuantType.QInt8, per_channel=True)
    floating.unlink()


def main(source: Path, out: Path, precision: str = "int8") -> None:
    out.mkdir(parents=True, exist_ok=True)
    # Eager attention traces into plain ops; sdpa would need a newer opset in the graph.
    model = SentenceTransformer(str(source), device="cpu",
                                model_kwargs={"attn_implementation": "eager"})
    tokenizer = model.tokenizer.backend_tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.save(str(out / "tokenizer.json"))
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    prefix, suffix = special_ids(model, tokenizer)
    prompts = {"query": model.prompts.get("query", ""),
               "document": model.prompts.get("document", "")}
    texts = [prompts["query"] + q for q in REFERENCE_QUERIES] + \
        [prompts["document"] + d for d in REFERENCE_DOCUMENTS]
    ids, mask = encode(tokenizer, texts, prefix, suffix)
    print(f"export: tracing {source.name} ({ids.shape[1]} tokens in the sample batch)", flush=True)
    export(model, out / "model.onnx", ids, mask)

    reference = model.encode(texts, convert_to_numpy=True, normalize_embeddings=False)
    worst = check(out / "model.onnx", ids, mask, reference, MIN_COSINE["fp32"])
    if precision == "int8":
        quantize(out / "model.onnx")
        worst = check(out / "model.onnx", ids, mask, reference, MIN_COSINE["int8"])
    digest = hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
    (out / "suggester-model.json").write_text(json.dumps({
        "name": source.name if source.name not in ("source", "") else "embeddinggemma-300m",
        "dimensions": int(reference.shape[1]),
        "max_tokens": MAX_TOKENS,
        "prefix_ids": prefix, "suffix_ids": suffix,
        "prompts": prompts,
        "model_sha256": digest,
        "precision": precision,
        # The served engine must stay this close to the reference vectors (the tests check).
        "min_cosine": MIN_COSINE[precision],
        "measured_min_cosine": round(worst, 6),
        # The app's tests embed these again and compare (tests/search/test_models.py).
        "reference": {"texts": texts, "vectors": reference.round(6).tolist()},
    }, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"export: wrote {out} ({reference.shape[1]} dimensions)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--precision", choices=sorted(MIN_COSINE), default="int8")
    arguments = parser.parse_args()
    main(arguments.source, arguments.out, arguments.precision)
