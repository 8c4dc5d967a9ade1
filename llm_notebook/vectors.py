"""`embed`: a list or a pandas column of texts to a matrix of vectors, one row per item, in one call.

    vectors = llm_notebook.embed(df["review"])           # DataFrame: df's index, a column per dimension
    xy = project(vectors.to_numpy())                      # a plain (n, d) float32 array
    df["vector"] = list(vectors.to_numpy())               # one vector per row of df

Pandas input keeps its index: the result is a DataFrame whose row labelled `i` is the vector of
the item labelled `i`, so it joins back by label (`df.join(vectors)`) even when the column was
filtered first. A list (or any other iterable) gives a numpy array in input order.

Batches go to the model `batch_size` items at a time, several at once where the model allows it
(`EmbeddingModel.concurrency`), on the background runner's worker threads. Everything is checked
before the first request: the model, the key and every item, so a bad row is named by its label
at once. A failed batch or an interrupt raises, saying how many items were embedded by then;
nothing partial is returned.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import runner
from .embeddings import EmbeddingInputError, EmbeddingModel
from .errors import LLMNotebookError, ModelError
from .model_keys import masked
from .userfiles import UserFile

__all__ = ["EmbedInterrupted", "embed", "embedding_model", "get_default_embedding_model",
           "set_default_embedding_model"]

FALLBACK_EMBEDDING_MODEL = "hashed-ngrams"
DEFAULT_EMBEDDING_MODEL_FILE = "default_embedding_model.txt"

default_embedding_model_file = UserFile(DEFAULT_EMBEDDING_MODEL_FILE)


class EmbedInterrupted(KeyboardInterrupt):
    """`embed` was interrupted; `finished` of `total` items had been embedded (none returned)."""

    def __init__(self, message: str, finished: int, total: int) -> None:
        super().__init__(message)
        self.finished, self.total = finished, total


class EmbedFailed(ModelError):
    """A batch failed; the message names it and says how many items were embedded before."""


# -- which model -------------------------------------------------------------------------------
def get_default_embedding_model() -> str:
    """The stored default embedding model, else the offline `hashed-ngrams`."""
    return default_embedding_model_file.read().strip() or FALLBACK_EMBEDDING_MODEL


def set_default_embedding_model(name: str | None) -> None:
    """Store the default embedding model (checked to exist); None goes back to `hashed-ngrams`."""
    if name is None:
        default_embedding_model_file.remove()
        return
    embedding_model(name)
    default_embedding_model_file.write(name)


def embedding_model(model: EmbeddingModel | str | None = None) -> EmbeddingModel:
    """The model `model` names (an id or alias), the model itself, or the default one."""
    if isinstance(model, EmbeddingModel):
        return model
    if model is not None and not isinstance(model, str):
        raise TypeError(f"model must be an embedding model's id or alias, or an EmbeddingModel, "
                        f"not {type(model).__name__}")
    from .plugins import get_embedding_model

    return get_embedding_model(model or get_default_embedding_model())


# -- embed -------------------------------------------------------------------------------------
def embed(items: Iterable[Any], model: EmbeddingModel | str | None = None, *,
          batch_size: int | None = None, concurrency: int | None = None, key: str | None = None,
          progress: bool = True):
    """The vectors of `items`: a (n, d) float32 array for a list, a DataFrame with the input's
    index for a pandas Series (or Index).

    `model`: an embedding model's id or alias, or the model; default: the stored default
    embedding model, else the offline `hashed-ngrams`. `batch_size` items go in each request
    (default: the model's own); at most `concurrency` requests run at once (default: what the
    model allows). A bar shows progress when the input takes more than one batch
    (`progress=False` hides it). Empty input gives a (0, d) result when the model knows its
    dimension `d`.
    """
    key = masked(key)
    chosen = embedding_model(model)
    size = chosen.effective_batch_size(batch_size)
    parallel = concurrency if concurrency is not None else chosen.concurrency
    if type(parallel) is not int or parallel < 1:
        raise ValueError(f"concurrency must be a whole number of at least 1 (got {parallel!r})")
    labels, values, index = _items(items)
    checked = [chosen.check_item(value, label) for label, value in zip(labels, values)]
    resolved_key = chosen.get_key(key)
    size = size or max(len(checked), 1)
    batches = [checked[start:start + size] for start in range(0, len(checked), size)]
    vectors = _embed_batches(chosen, batches, resolved_key, parallel,
                             progress and len(batches) > 1)
    return _aligned(_matrix(vectors, chosen), index, chosen)


def _items(items: Any) -> tuple[list[Any], list[Any], Any]:
    """(labels, values, pandas index or None): labels name the items in errors."""
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        if isinstance(items, pandas.DataFrame):
            raise TypeError("embed takes one column of texts, not a DataFrame: pass "
                            "df['column_name']")
        if isinstance(items, pandas.Series):
            return list(items.index), list(items), items.index
        if isinstance(items, pandas.Index):
            return list(items), list(items), items
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise TypeError(f"embed takes a list or a pandas Series of texts, not "
                        f"{type(items).__name__}: wrap one text in a list (or call "
                        "model.embed(text)); pass a dict as pandas.Series(d) to keep its keys")
    values = list(items)
    return list(range(len(values))), values, None


def _embed_batches(model: EmbeddingModel, batches: list[list[Any]], key: Any, concurrency: int,
                   show_progress: bool) -> list[list[float]]:
    """Every batch's vectors, in order; batches run on the runner's worker threads."""
    total = sum(len(batch) for batch in batches)
    results: list[list[list[float]] | None] = [None] * len(batches)
    bar = _progress_bar(total, model) if show_progress else None
    finished = 0
    interrupted = False
    try:
        with contextlib.closing(runner.relay(
                lambda emit: _run(model, batches, key, concurrency, emit))) as done:
            for number, vectors in done:
                results[number] = vectors
                finished += len(vectors)
                if bar is not None:
                    bar.update(finished, 0)
    except KeyboardInterrupt:
        interrupted = True
        raise EmbedInterrupted(
            f"embed interrupted with {finished} of {total} items embedded; nothing is returned. "
            "Run it again, or on a part of the input at a time", finished, total) from None
    except _BatchFailed as failure:
        raise EmbedFailed(_failure_message(failure, batches, finished, total),
                          retryable=False) from None
    finally:
        if bar is not None:
            bar.close(interrupted=interrupted)
    return [vector for batch in results for vector in batch]


class _BatchFailed(Exception):
    def __init__(self, number: int, error: Exception) -> None:
        super().__init__(number, error)
        self.number, self.error = number, error


async def _run(model: EmbeddingModel, batches: list[list[Any]], key: Any, concurrency: int,
               emit: Callable[[tuple[int, list[list[float]]]], None]) -> None:
    """At most `concurrency` workers, each taking the next batch when it is free, each with a
    thread of its own. After a failure none starts another; the batches already sent finish,
    then the failure is raised."""
    loop = asyncio.get_running_loop()
    todo = iter(enumerate(batches))
    failures: list[_BatchFailed] = []
    workers = min(concurrency, len(batches))
    threads = concurrent.futures.ThreadPoolExecutor(max(workers, 1),
                                                    thread_name_prefix="llm_notebook-embed")

    async def worker() -> None:
        for number, batch in todo:
            if failures:
                return
            try:
                vectors = await loop.run_in_executor(
                    threads, functools.partial(model.embed_checked_batch, batch, key=key))
            except Exception as exc:
                failures.append(_BatchFailed(number, exc))
                return
            emit((number, vectors))

    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:  # after an interrupt a batch still being sent is abandoned; none other starts
        threads.shutdown(wait=False, cancel_futures=True)
    if failures:
        raise failures[0]


def _failure_message(failure: _BatchFailed, batches: list[list[Any]], finished: int,
                     total: int) -> str:
    first = sum(len(batch) for batch in batches[:failure.number])
    last = first + len(batches[failure.number]) - 1
    where = (f"batch {failure.number + 1} of {len(batches)} (items {first} to {last})"
             if len(batches) > 1 else "the batch")
    error = failure.error
    reason = str(error) if isinstance(error, LLMNotebookError) else f"{type(error).__name__}: {error}"
    return (f"Embedding failed on {where}: {reason} ({finished} of {total} items had been "
            "embedded; nothing is returned)")


def _progress_bar(total: int, model: EmbeddingModel):
    from .notebook.progress import progress_display

    return progress_display(total, f"{model.model_id} embeddings", unit="texts")


def _matrix(vectors: list[list[float]], model: EmbeddingModel):
    """The vectors as one float32 array; vectors of different lengths are the model's error."""
    import numpy as np

    if not vectors:
        dimensions = model.dimensions
        if not dimensions:
            raise EmbeddingInputError(
                f"Nothing to embed: the input is empty, and embedding model {model.model_id!r} "
                "does not say how many dimensions its vectors have, so no (0, d) result can "
                "be made")
        return np.zeros((0, dimensions), dtype=np.float32)
    lengths = sorted({len(vector) for vector in vectors})
    if len(lengths) > 1:
        raise ModelError(f"Embedding model {model.model_id!r} returned vectors of different "
                         f"lengths ({', '.join(map(str, lengths))}), which make no matrix",
                         retryable=False)
    return np.asarray(vectors, dtype=np.float32)


def _aligned(matrix, index: Any, model: EmbeddingModel):
    if index is None:
        return matrix
    import pandas as pd

    frame = pd.DataFrame(matrix, index=index)
    frame.attrs["embedding_model"] = model.model_id
    return frame
