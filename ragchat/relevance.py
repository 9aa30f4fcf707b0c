"""The relevance floor: does anything in the collection answer the question at all?

No fixed similarity can say so: cosine scales differ between embedding models (E5's crowd
around 0.7-0.9, MiniLM's spread from 0 to 0.8) and BM25 scales between collections. So each
collection is calibrated against itself: it is asked 32 everyday *probe* questions that no
document collection is about, and the best dense cosine and the best BM25 score of each make
its null distribution (the median, and 1.4826 x the median absolute deviation as the scale).
A question's z is how far its own best score stands above that null.

Why a z and not a cosine: E5's cosines crowd into 0.7-0.9, so an unrelated question's best
chunk scores ~0.78 and a relevant one's ~0.86, a gap MiniLM shows as ~0.25 against ~0.6. A
fixed threshold right for one refuses nothing (or everything) with the other. But the probes'
best scores crowd as the model's do: their median sits where "unrelated" lands and their
spread shrinks with the scale, so z is the same for any model whose cosines are a stretched
and shifted copy of another's (z of a*s+b is z of s). What z does not remove is a model that
ranks differently; that is why the rule also asks BM25, whose scale is the collection's own.

- refused ("not found") when dense z < 1.5 and lexical z < 5: nothing looks like the
  question, and no rare word of it is in the collection;
- weak support when not refused but dense z < 3.

Chosen on 766 labelled (question, collection) pairs over seven collections: 89.6% of
off-topic questions refused, 0.5% of answerable ones (bench/RESULTS.md). The probes cost 32
query embeddings and 64 searches, once per state of the collection (kept in the manifest, so
a changed collection is calibrated again on its next question).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragchat.collection import Collection
    from ragchat.retrieval import DenseRetriever, LexicalRetriever

REFUSE_DENSE_Z = 1.5
RESCUE_LEXICAL_Z = 5.0
WEAK_DENSE_Z = 3.0
Z_CAP = 99.0  # the z of a score above probes that all scored alike (kept finite for JSON)
PROBES_VERSION = "1"  # change it when PROBES change: every calibration is redone
PROBES = (
    "What time does the shop open on Sunday?",
    "How do I cook rice without a rice cooker?",
    "Who won the football match last night?",
    "What is the capital of Australia?",
    "Can you recommend a good film to watch tonight?",
    "How do I reset my email password?",
    "What is the weather forecast for tomorrow?",
    "How many calories are in a banana?",
    "Where can I park my car near the station?",
    "What is a good name for a puppy?",
    "How do I remove a red wine stain from a carpet?",
    "When is the next bus to the airport?",
    "What are the rules of chess?",
    "How tall is the tallest mountain in Europe?",
    "Tell me a joke about cats.",
    "How long should I boil an egg?",
    "What is the best way to learn to play the guitar?",
    "Who painted the Mona Lisa?",
    "How do I change a flat tyre on a bicycle?",
    "What should I pack for a beach holiday?",
    "Is it going to snow at Christmas?",
    "How do I grow tomatoes on a balcony?",
    "What is the plot of Romeo and Juliet?",
    "How do I make my houseplants live longer?",
    "What is the difference between a violin and a viola?",
    "Where do penguins live?",
    "How often should I water a cactus?",
    "What games can children play at a birthday party?",
    "How do I tie a bow tie?",
    "What is the fastest animal on land?",
    "How do I write a thank-you letter to my aunt?",
    "Which language is spoken in Brazil?",
)
STRONG, WEAK, NONE = "strong", "weak", "none"


@dataclass(frozen=True)
class Null:
    """What a score looks like for a question the collection is not about."""

    median: float
    scale: float  # 0 when the probes all scored the same

    @classmethod
    def of(cls, values: Sequence[float]) -> Null:
        median = statistics.median(values)
        deviations = [abs(v - median) for v in values]
        # the MAD is 0 when most probes score alike (often 0 for BM25 in a small collection);
        # then the mean deviation, which is 0 only if every probe scored the same
        scale = 1.4826 * statistics.median(deviations) or 1.2533 * statistics.fmean(deviations)
        return cls(median, scale)

    def z(self, value: float) -> float:
        if self.scale > 0:
            return (value - self.median) / self.scale
        # every probe scored the same: typically BM25 0 for all 32 in a small collection that
        # holds none of their words; a question that scores above that shares words with it
        return Z_CAP if value > self.median else 0.0


@dataclass(frozen=True)
class Support:
    """How well the collection supports a question: ``strong``, ``weak`` or ``none``."""

    level: str
    dense_z: float
    lexical_z: float

    @property
    def found(self) -> bool:
        return self.level != NONE

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "dense_z": round(self.dense_z, 3),
            "lexical_z": round(self.lexical_z, 3),
        }


def judge(dense_z: float, lexical_z: float) -> Support:
    if dense_z < REFUSE_DENSE_Z and lexical_z < RESCUE_LEXICAL_Z:
        level = NONE
    elif dense_z < WEAK_DENSE_Z:
        level = WEAK
    else:
        level = STRONG
    return Support(level, dense_z, lexical_z)


class Floor:
    """The relevance floor of one collection, over its dense and lexical rankings."""

    def __init__(
        self, collection: Collection, dense: DenseRetriever, lexical: LexicalRetriever
    ) -> None:
        self.collection = collection
        self.dense = dense
        self.lexical = lexical
        self._nulls: tuple[str, Null, Null] | None = None

    def best(self, query: str, paths: Sequence[str] | None = None) -> tuple[float, float]:
        """The best dense cosine and the best BM25 score of any chunk for ``query``."""
        dense = self.dense.candidates(query, 1, paths)
        lexical = self.lexical.candidates(query, 1, paths)
        return (dense[0].score if dense else 0.0, lexical[0].score if lexical else 0.0)

    def _state(self) -> str:
        embedder = self.dense.embedder
        return f"{self.collection.state()}|{embedder.id}|{embedder.backend}|{PROBES_VERSION}"

    def nulls(self) -> tuple[Null, Null]:
        """(dense, lexical) null distributions: from the manifest when the collection has not
        changed since they were computed, else from the probes now."""
        state = self._state()
        if self._nulls is None or self._nulls[0] != state:
            manifest, name = self.collection.manifest, self.collection.name
            kept = manifest.calibration(name, state)
            if kept is not None:
                data = json.loads(kept)
                dense, lexical = Null(**data["dense"]), Null(**data["lexical"])
            else:
                scores = [self.best(probe) for probe in PROBES]
                dense = Null.of([d for d, _ in scores])
                lexical = Null.of([lex for _, lex in scores])
                data = {"dense": asdict(dense), "lexical": asdict(lexical)}
                manifest.put_calibration(name, state, json.dumps(data))
            self._nulls = (state, dense, lexical)
        return self._nulls[1], self._nulls[2]

    def support(self, queries: Sequence[str], paths: Sequence[str] | None = None) -> Support:
        """The support of the best-supported of ``queries`` (a follow-up is searched as its
        rewrite and as itself with the question before it)."""
        dense_null, lexical_null = self.nulls()
        best = [self.best(query, paths) for query in queries]
        return judge(
            max(dense_null.z(d) for d, _ in best), max(lexical_null.z(lex) for _, lex in best)
        )
