"""`hashed-ngrams`: an embedding model that needs no key, no network and no download.

Each text becomes the counts of its words and of its characters' trigrams, hashed into a fixed
number of dimensions with a signed hash (so collisions cancel out rather than pile up), then scaled
to length 1. Texts that share words and spellings get close vectors, which is enough to try
clustering, similarity and projections offline; the same text gives the same vector in every
process and on every machine. Bytes are embedded from their 4-grams.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator

from llm_notebook.embeddings import EmbeddingModel
from llm_notebook.plugins import hookimpl

DIMENSIONS = 256
_WORD = re.compile(r"\w+")


def features(item: str | bytes) -> Iterator[bytes]:
    """What a text is made of, as bytes to hash: its words, and each word's character trigrams
    (padded with spaces, so a word's start and end count); for bytes, every 4-gram."""
    if isinstance(item, bytes):
        yield from (b"b:" + item[i:i + 4] for i in range(max(len(item) - 3, 1)) if item)
        return
    text = unicodedata.normalize("NFKC", item).casefold()
    for word in _WORD.findall(text):
        yield b"w:" + word.encode("utf-8")
        padded = f" {word} "
        for start in range(len(padded) - 2):
            yield b"c:" + padded[start:start + 3].encode("utf-8")


def hashed_vector(item: str | bytes, dimensions: int = DIMENSIONS) -> list[float]:
    """The signed feature counts of `item` in `dimensions` buckets, scaled to length 1
    (all zeros for an item with no features, such as an empty string)."""
    vector = [0.0] * dimensions
    for feature in features(item):
        digest = int.from_bytes(hashlib.blake2b(feature, digest_size=8).digest(), "big")
        vector[digest % dimensions] += 1.0 if digest >> 63 else -1.0
    length = math.sqrt(sum(value * value for value in vector))
    return [value / length for value in vector] if length else vector


class HashedNgrams(EmbeddingModel):
    model_id = "hashed-ngrams"
    batch_size = 100
    supports_binary = True
    dimensions = DIMENSIONS

    def embed_batch(self, items: Iterable[str | bytes], *, key: str | None = None):
        return [hashed_vector(item, self.dimensions) for item in items]


@hookimpl
def register_embedding_models(register):
    register(HashedNgrams(), aliases=("offline",))
