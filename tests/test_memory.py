"""Peak memory of an ingest stays bounded whatever the size of the file (issue 19.7): a
one-line text file and a one-line JSON file, ingested in a subprocess whose peak RSS
(getrusage) is measured. Everything is real (the windows, the bundled embedder's tokenizer
counting every chunk, Chroma, the lexical index) but the ONNX inference, stood in for by
random vectors: inference holds one batch at a time whatever the file, and at its real speed
a 10 MB file would take many minutes here. ``python tests/test_memory.py FILE`` measures a
file of your own."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MEASURE = """
import json, sys, time
from pathlib import Path
import numpy as np
from ragchat.app import App
from ragchat.config import Settings

path, home = Path(sys.argv[1]), Path(sys.argv[2])
app = App(home, Settings(embedding_model="bundled"))
embedder = app.embedder
rng = np.random.default_rng(0)

def embed_batch(texts):
    vectors = rng.standard_normal((len(texts), embedder.dimension)).astype(np.float32)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).tolist()

embedder.embed_batch = embed_batch
def peak_mb():
    # VmHWM, this process's own peak: getrusage's ru_maxrss keeps, across fork and exec, the
    # peak of the process that started it (pytest's, 1.9 GB once the suite has loaded models)
    status = Path("/proc/self/status").read_text()
    (line,) = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) / 1024

started = time.perf_counter()
report = app.ingest(path)
print(json.dumps({
    "peak_mb": peak_mb(),
    "chunks": report.chunks_embedded,
    "skipped": report.skipped,
    "seconds": round(time.perf_counter() - started, 1),
}))
"""

WORDS = ("harbour", "wall", "storm", "keeper", "ferry", "tide", "gull", "solar", "panel")
WORDS += ("battery", "member", "fee")
LIMIT_MB = 1024
GROWTH_MB = 80  # what 4.5 MB more of a file may add to the peak (on main: ~600 MB)


def measure(path: Path, home: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(home)],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, "RAGCHAT_HOME": str(home), "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def one_line_text(path: Path, megabytes: float) -> Path:
    """Sentences, and no newline at all."""
    chance = random.Random(1)
    words = WORDS
    with path.open("w") as handle:
        size = 0
        while size < megabytes * 1_000_000:
            count = chance.randint(6, 20)
            sentence = " ".join(chance.choice(words) for _ in range(count)).capitalize() + ". "
            handle.write(sentence)
            size += len(sentence)
    return path


def one_line_json(path: Path, megabytes: float) -> Path:
    """A minified array of records: no newline, no sentence end, few spaces."""
    chance = random.Random(2)
    words = WORDS[:10]
    with path.open("w") as handle:
        handle.write("[")
        size, n = 0, 0
        while size < megabytes * 1_000_000:
            record = json.dumps(
                {
                    "id": n,
                    "name": f"item-{n}",
                    "tags": chance.sample(words, 3),
                    "note": " ".join(chance.choice(words) for _ in range(12)),
                },
                separators=(",", ":"),
            )
            handle.write(("," if n else "") + record)
            size, n = size + len(record) + 1, n + 1
        handle.write("]")
    return path


@pytest.mark.parametrize("make", [one_line_text, one_line_json], ids=["text", "json"])
def test_peak_memory_does_not_grow_with_the_size_of_a_one_line_file(tmp_path: Path, make):
    """Four times the file, the same peak (it was 1.5 GB for 10 MB of one-line text, 4.5 GB
    for 100 MB, 8.5 GB for 50 MB of JSON): the figures for files at the size cap are in
    CHANGELOG.md."""
    suffix = ".json" if make is one_line_json else ".txt"
    peaks = {}
    for megabytes in (1.5, 6):
        path = make(tmp_path / f"{megabytes}{suffix}", megabytes)
        figures = measure(path, tmp_path / f"home-{megabytes}")
        assert figures["skipped"] == [] and figures["chunks"] > 300 * megabytes, figures
        peaks[megabytes] = figures["peak_mb"]
    assert peaks[6] < LIMIT_MB, peaks
    assert peaks[6] - peaks[1.5] < GROWTH_MB, peaks


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as home:
        print(measure(Path(sys.argv[1]), Path(home)))
