"""The default model's speed without its weights (issue 17.2): e5-large-v2 cannot be downloaded
here, but its speed depends only on its architecture. This builds a model of the same shape
(BERT-large: 24 layers, hidden 1024, 16 heads, intermediate 4096, 512 positions, vocabulary
30,522) with random weights, as a sentence-transformers folder (mean pooling, normalisation,
the bundled MiniLM's tokenizer: the same bert-base-uncased WordPiece vocabulary), exports it
through ragchat's own int8 path (OnnxEmbedder on a local folder) and times, in the same run:

- ingest: the same chunk texts (SciFact abstracts chunked at 200 tokens, as ragchat does)
  through ``OnnxEmbedder.embed_passages`` (int8) and ``SentenceTransformer.encode`` (fp32,
  batch 32): chunks/s and tokens/s;
- query: ms per ``embed_query`` (int8) and per one-text ``encode`` (fp32);
- the bundled MiniLM through the same int8 path, for tokens/s x parameters.

    python bench/large_model.py [--chunks 96] [--work /work/scratch/speed/large]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(folder: Path) -> None:
    """A random-weight BERT-large sentence-transformers folder (what e5-large-v2 looks like)."""
    import shutil

    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    from ragchat.bundled import bundled_embedding_model

    if (folder / "modules.json").exists():
        return
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=512,
    )
    bert = folder / "bert"
    BertModel(config).save_pretrained(bert)
    minilm = bundled_embedding_model()
    assert minilm is not None, "the bundled MiniLM is needed for its tokenizer files"
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (minilm / name).exists():
            shutil.copy2(minilm / name, bert / name)
    transformer = models.Transformer(str(bert), max_seq_length=512)
    pooling = models.Pooling(1024, pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()]).save(str(folder))
    shutil.rmtree(bert)


def chunk_texts(eval_data: Path, count: int) -> list[str]:
    from ragchat.chunking import chunk_pages
    from ragchat.embedders import OnnxEmbedder
    from ragchat.ingest import TextSource

    counter = OnnxEmbedder("bundled", Path(os.environ["RAGCHAT_CACHE"]) / "models")
    texts: list[str] = []
    for line in (eval_data / "scifact" / "corpus.jsonl").open():
        row = json.loads(line)
        pages = TextSource(str(row["_id"]), f"{row.get('title', '')}\n\n{row['text']}").load()
        texts += [c.text for c in chunk_pages(pages, counter.count_tokens, 200, 256)]
        if len(texts) >= count:
            return texts[:count]
    return texts


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/ragchat-large"))
    parser.add_argument("--eval-data", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--chunks", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of int8 then fp32")
    args = parser.parse_args()
    os.environ.setdefault("RAGCHAT_CACHE", str(args.work / "cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer
    from speed import QUERIES  # bench/speed.py's, the same questions as its cold query

    from ragchat.bundled import bundled_embedding_model
    from ragchat.embedders import OnnxEmbedder

    folder = args.work / "bert-large-random"
    started = time.perf_counter()
    build(folder)
    print(f"built in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    cache = Path(os.environ["RAGCHAT_CACHE"]) / "models"
    large = OnnxEmbedder(str(folder), cache)
    started = time.perf_counter()
    large.dimension  # noqa: B018 - exports once
    export = time.perf_counter() - started
    print(f"int8 export {export:.0f}s (load {load():.1f})", file=sys.stderr)
    fp32 = SentenceTransformer(str(folder), device="cpu")
    minilm = OnnxEmbedder("bundled", cache)
    minilm_fp32 = SentenceTransformer(str(bundled_embedding_model()), device="cpu")
    texts = chunk_texts(args.eval_data, args.chunks)
    assert len(texts) == args.chunks, len(texts)
    tokens = sum(large.count_tokens(texts))
    for warm in (large, minilm):
        warm.embed_passages(texts[:2])
    fp32.encode(texts[:2])
    minilm_fp32.encode(texts[:2])

    def ingest_int8(embedder: OnnxEmbedder) -> float:
        t = time.perf_counter()
        embedder.embed_passages(texts)
        return time.perf_counter() - t

    def ingest_fp32(model: SentenceTransformer) -> float:
        t = time.perf_counter()
        model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        return time.perf_counter() - t

    def query_int8(embedder: OnnxEmbedder) -> float:
        t = time.perf_counter()
        for q in QUERIES:
            embedder.embed_query(q)
        return (time.perf_counter() - t) / len(QUERIES) * 1000

    def query_fp32(model: SentenceTransformer) -> float:
        t = time.perf_counter()
        for q in QUERIES:
            model.encode([q], normalize_embeddings=True, show_progress_bar=False)
        return (time.perf_counter() - t) / len(QUERIES) * 1000

    runs: dict[str, list[float]] = {}
    loads: list[float] = []
    for _ in range(args.rounds):
        loads.append(load())
        for name, measure in (
            ("large int8 ingest", lambda: ingest_int8(large)),
            ("large fp32 ingest", lambda: ingest_fp32(fp32)),
            ("minilm int8 ingest", lambda: ingest_int8(minilm)),
            ("minilm fp32 ingest", lambda: ingest_fp32(minilm_fp32)),
            ("large int8 query", lambda: query_int8(large)),
            ("large fp32 query", lambda: query_fp32(fp32)),
        ):
            runs.setdefault(name, []).append(measure())
            print(f"{name}: {runs[name][-1]:.2f}", file=sys.stderr)
    loads.append(load())

    def params(model: SentenceTransformer) -> int:
        return sum(p.numel() for p in model.parameters())

    p_large, p_minilm = params(fp32), params(minilm_fp32)
    median = {name: statistics.median(values) for name, values in runs.items()}
    ratio = lambda a, b: statistics.median(  # noqa: E731
        [x / y for x, y in zip(runs[a], runs[b], strict=True)]
    )
    n = len(texts)
    lines = [
        "### The default model's architecture (e5-large-v2 shape, random weights)",
        "",
        f"Command: `python bench/large_model.py --chunks {args.chunks} --rounds {args.rounds}`."
        f" BERT-large ({p_large / 1e6:.0f}M parameters; MiniLM: {p_minilm / 1e6:.0f}M),"
        f" {n} SciFact chunks of ~200 tokens ({tokens:,} tokens), {args.rounds} rounds, int8"
        f" and fp32 alternating; int8 export {export:.0f} s (once). Load average (1 min) at"
        f" each round: {', '.join(f'{x:.1f}' for x in loads)} (2 cores, shared).",
        "",
        "| | chunks/s | tokens/s | ms per query |",
        "| --- | --- | --- | --- |",
    ]
    for model in ("large", "minilm"):
        for kind in ("int8", "fp32"):
            seconds = median[f"{model} {kind} ingest"]
            query = median.get(f"{model} {kind} query")
            name = {"large": "BERT-large", "minilm": "MiniLM-L6"}[model]
            label = f"{name} {kind}" + (" (ragchat's default path)" if kind == "int8" else "")
            lines.append(
                f"| {label} | {n / seconds:.1f} | {tokens / seconds:,.0f} |"
                f" {f'{query:.0f}' if query else '-'} |"
            )
    lines += [
        "",
        f"int8 / fp32, same run (median of the rounds' ratios): BERT-large ingest"
        f" {ratio('large fp32 ingest', 'large int8 ingest'):.2f}x faster, query"
        f" {ratio('large fp32 query', 'large int8 query'):.2f}x faster; MiniLM ingest"
        f" {ratio('minilm fp32 ingest', 'minilm int8 ingest'):.2f}x faster.",
        f"tokens/s x parameters, int8: BERT-large"
        f" {tokens / median['large int8 ingest'] * p_large / 1e9:.0f}e9, MiniLM"
        f" {tokens / median['minilm int8 ingest'] * p_minilm / 1e9:.0f}e9.",
        "",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
