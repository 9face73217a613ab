"""CPU kernels: TfIdfVectorizer (9+), the n-gram vectorizer of text (or integer token)
features: it counts a pool of n-grams, with skips, in each row and weights the counts as TF, IDF
or TFIDF.

Tokens are mapped to pool ids with ``searchsorted`` on the sorted vocabulary; the n-gram walk
after that is integer numpy over a trie of the pool.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ort.ep import KernelTable, NodeInfo

kernels = KernelTable()


class _NgramTrie:
    """The pool's n-grams as a trie over token ids, in arrays for a vectorized walk.

    Node 0 is the root; the child of ``node`` through token ``t`` is found by looking up
    ``node * radix + t`` in the sorted ``keys`` (``children`` holds the matching node ids).
    ``column[node]`` is the output column of the n-gram ending at ``node``, or -1.
    """

    def __init__(self, vocab: np.ndarray, grams: list[tuple[int, ...]],
                 columns: list[int]) -> None:
        self.vocab = vocab
        self.radix = len(vocab) + 1
        edges: dict[int, int] = {}
        column = [-1]
        for gram, col in zip(grams, columns):
            node = 0
            for token in gram:
                key = node * self.radix + token
                child = edges.get(key)
                if child is None:
                    child = edges[key] = len(column)
                    column.append(-1)
                node = child
            column[node] = col
        order = sorted(edges)
        self.keys = np.array(order, dtype=np.int64)
        self.children = np.array([edges[k] for k in order], dtype=np.int64)
        self.column = np.array(column, dtype=np.int64)
        self.max_len = max((len(g) for g in grams), default=0)

    def token_ids(self, x: np.ndarray) -> np.ndarray:
        """Map input tokens to vocabulary ids (-1: not in the pool)."""
        if len(self.vocab) == 0 or x.size == 0 or (x.dtype == object) != (
                self.vocab.dtype == object):  # a string pool never matches numbers and back
            return np.full(x.shape, -1, dtype=np.int64)
        if x.dtype == object:
            pos = np.searchsorted(self.vocab, x)
        else:
            pos = np.searchsorted(self.vocab, x.astype(np.int64))
        pos = np.minimum(pos, len(self.vocab) - 1)
        return np.where(self.vocab[pos] == x, pos, -1).astype(np.int64)

    def child(self, node: np.ndarray, token: np.ndarray) -> np.ndarray:
        """The child of each ``node`` through ``token`` (-1: none)."""
        if len(self.keys) == 0:
            return np.full(node.shape, -1, dtype=np.int64)
        key = node * self.radix + token
        pos = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        found = (self.keys[pos] == key) & (node >= 0) & (token >= 0)
        return np.where(found, self.children[pos], -1)


def _tfidf_trie(node: NodeInfo, pool: list[Any], counts: list[int], indexes: list[int],
                min_len: int, max_len: int) -> _NgramTrie:
    """Split the pool into n-grams (``ngram_counts`` gives where each size starts) and build
    the trie of those with ``min_len <= n <= max_len``; raise ValueError on a bad layout."""
    vocab = np.array(sorted(set(pool)), dtype=object if pool and isinstance(pool[0], str)
                     else np.int64)
    lookup = {tok: i for i, tok in enumerate(vocab.tolist())}
    grams: list[tuple[int, ...]] = []
    columns: list[int] = []
    seen: set[tuple[int, ...]] = set()
    gram_id = 0
    bounds = list(counts) + [len(pool)]
    for size, (start, end) in enumerate(zip(bounds[:-1], bounds[1:]), start=1):
        if not 0 <= start <= end <= len(pool):
            raise ValueError(f"{node.describe()}: ngram_counts {counts} do not fit a pool of "
                             f"{len(pool)} items")
        if (end - start) % size:
            raise ValueError(f"{node.describe()}: {end - start} items do not make whole "
                             f"{size}-grams")
        for first in range(start, end, size):
            if gram_id >= len(indexes):
                raise ValueError(f"{node.describe()}: ngram_indexes has {len(indexes)} entries,"
                                 f" fewer than the pool's n-grams")
            tokens = pool[first:first + size]
            gram = tuple(lookup[t] for t in tokens)
            if gram in seen:
                raise ValueError(f"{node.describe()}: duplicate {size}-gram {tokens}")
            seen.add(gram)
            if min_len <= size <= max_len:
                grams.append(gram)
                columns.append(int(indexes[gram_id]))
            gram_id += 1
    return _NgramTrie(vocab, grams, columns)


@kernels.register("TfIdfVectorizer", 9)
def tfidf_vectorizer(node: NodeInfo):
    """TfIdfVectorizer 9+: count the pool's n-grams (with skips) in each row of a [C] or [N, C]
    tensor and weight them as TF, IDF or TFIDF."""
    attrs = node.attrs
    mode = attrs.get("mode")
    if mode not in ("TF", "IDF", "TFIDF"):
        raise ValueError(f"{node.describe()}: mode must be TF, IDF or TFIDF, got {mode!r}")
    min_len, max_len = int(attrs["min_gram_length"]), int(attrs["max_gram_length"])
    max_skip = int(attrs["max_skip_count"])
    if min_len < 1 or max_len < min_len or max_skip < 0:
        raise ValueError(f"{node.describe()}: need 1 <= min_gram_length <= max_gram_length and "
                         f"max_skip_count >= 0")
    indexes = [int(i) for i in attrs["ngram_indexes"]]
    if not indexes or min(indexes) < 0:
        raise ValueError(f"{node.describe()}: ngram_indexes must be non-empty and non-negative")
    pool = attrs.get("pool_strings") or attrs.get("pool_int64s") or []
    if attrs.get("pool_strings") and attrs.get("pool_int64s"):
        raise ValueError(f"{node.describe()}: give pool_strings or pool_int64s, not both")
    weights = attrs.get("weights")
    if weights and len(weights) != len(indexes):
        raise ValueError(f"{node.describe()}: weights ({len(weights)}) and ngram_indexes "
                         f"({len(indexes)}) must have the same size")
    trie = _tfidf_trie(node, list(pool), [int(c) for c in attrs["ngram_counts"]], indexes,
                       min_len, max_len)
    out_size = max(indexes) + 1
    column_weights = None
    if weights:
        column_weights = np.zeros(out_size, dtype=np.float32)
        column_weights[indexes] = np.asarray(weights, dtype=np.float32)

    def count(ids: np.ndarray) -> np.ndarray:
        rows, width = ids.shape
        freq = np.zeros((rows, out_size), dtype=np.int64)
        if width == 0 or trie.max_len == 0:
            return freq
        row_of = np.repeat(np.arange(rows), width).reshape(rows, width)
        starts = np.arange(width)
        for skip in range(1, max_skip + 2):
            shortest = min_len if skip == 1 else max(min_len, 2)
            if shortest > trie.max_len:
                break
            state = np.zeros((rows, width), dtype=np.int64)
            for level in range(trie.max_len):
                pos = starts + level * skip
                inside = pos < width
                if not inside.any():
                    break
                tokens = np.where(inside, ids[:, np.minimum(pos, width - 1)], -1)
                state = trie.child(state, tokens)
                if level + 1 >= shortest:
                    col = np.where(state >= 0, trie.column[state], -1)
                    hit = col >= 0
                    np.add.at(freq, (row_of[hit], col[hit]), 1)
                if not (state >= 0).any():
                    break
        return freq

    def compute(x):
        if x.ndim not in (1, 2):
            raise ValueError(f"{node.describe()}: input must be [C] or [N, C], "
                             f"got shape {list(x.shape)}")
        rows = x.reshape(1, -1) if x.ndim == 1 else x
        freq = count(trie.token_ids(rows))
        if mode == "TF":
            y = freq.astype(np.float32)
        elif mode == "IDF":
            present = (freq > 0).astype(np.float32)
            y = present * column_weights if column_weights is not None else present
        else:
            y = freq.astype(np.float32)
            if column_weights is not None:
                y = y * column_weights
        return (y.reshape(out_size) if x.ndim == 1 else y,)

    return compute
