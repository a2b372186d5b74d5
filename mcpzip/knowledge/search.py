"""Ranked keyword search over the catalog, offline and fast.

:class:`Index` is built once per catalog version and is immutable;
:class:`Searcher` keeps one in step with the catalog and remembers answers
per normalised query.  docs/search.md has the full account; in short:

* Text is split into words at ``_ - . /``, camelCase and letter/digit
  boundaries, case-folded and lightly stemmed, so ``listPullRequests``,
  ``list-pull-requests`` and "listing pull requests" meet.
* Each tool is scored BM25F-style over fields weighted by how much they say
  about it: its name and title most, then the first sentence of its
  description, its server, parameter names, the rest of the description and
  the parameters' descriptions.
* Each query word is one *concept*: the word, the synonyms a small built-in
  vocabulary gives for it (delete ~ remove ~ drop ...) at a lower weight, and,
  for a word no tool or vocabulary entry spells that way, its close
  spellings.  A concept scores with its best alternative in each tool and
  counts as much as the concept is rare, so a word with many synonyms does
  not outweigh one with few.
* Tools matching more of the query's concepts rank higher; a query that
  names a server (``github``, ``mongo``, ``google calendar``) lifts that
  server's tools without removing anyone else's; a query without a verb
  ("gmail labels") slightly prefers tools that look things up.
* Ties are broken by name, so the order is deterministic.

Nothing heavy happens at import time: the vocabulary is parsed, and the
spelling index and the per-word synonym postings are built, on first use.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
from array import array
from bisect import bisect_left
from collections import Counter
from itertools import compress

from .vocabulary import ACTIONS, IMPERATIVES, IRREGULAR, LOOKUPS, PHRASES, RELATED, SHORTHAND, STOPWORDS, SYNONYMS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable

    from .catalog import Catalog, Tool

# -- tuning -----------------------------------------------------------------
#
# Fields of a tool, how much a word in each says about the tool, BM25's
# length normalisation per field (names are short and alike, so barely
# normalised) and the length a field is measured against.  A fixed reference
# length, rather than the catalog's average, keeps each tool's term weights
# independent of the other tools, so the index is built in one pass.
FIELDS = ("name", "title", "server", "lead", "body", "param", "param_text")
WEIGHTS = {"name": 3.0, "title": 2.0, "server": 1.0, "lead": 1.2, "body": 0.5, "param": 0.6, "param_text": 0.25}
B = {"name": 0.3, "title": 0.3, "server": 0.0, "lead": 0.5, "body": 0.75, "param": 0.5, "param_text": 0.75}
LENGTHS = {"name": 2.5, "title": 2.5, "server": 1.0, "lead": 6.0, "body": 12.0, "param": 5.0, "param_text": 24.0}
K1 = 1.2
# A word in the tool's name or title also counts outside BM25's saturation,
# so it keeps more of its weight over the same word in the description; the
# word exactly as typed in the name counts a little more again.
NAME_BONUS = 1.0
EXACT_NAME = 0.3
# How much an alternative counts against the word the user typed.
SYNONYM_WEIGHT = 0.7
RELATED_WEIGHT = 0.4
TYPO_WEIGHT = 0.8
IMPLIED_WEIGHT = 0.7
# Share of a tool's score that depends on how many of the query's concepts it matches.
COVERAGE = 0.5
# Lift for look-up tools (list, get, search ...) when the query has no verb.
BROWSE = 0.15
# A named server multiplies its tools' scores and adds a share of the best
# score, so its tools come first among comparable matches while a tool that
# fits the rest of the query much better still shows.  Naming a server by
# part of its name ("mongo") is less sure than by a word of it; below
# MIN_NAMING a server does not count as named.
SERVER_FACTOR = 0.6
SERVER_BONUS = 0.25
PART_NAME = 0.8
MIN_NAMING = 0.3
# A tool "matches" (for the "more matches" note) when its text scores at
# least this share of the best tool's.
MATCH_SHARE = 0.25
QUERY_CACHE_SIZE = 512
# Concepts a query is scored with at most: the rarest (typical queries have up to eight).
MAX_CONCEPTS = 12
# Only the start of a very long description is indexed.
BODY_CHARS = 1500

# -- words ------------------------------------------------------------------

_RUN = re.compile(r"[^\W_]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+|[^\W\d_]+")
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)\]`'\"])[.!?](?:\s|$)|\n\s*\n")

def _words(text: str) -> list[str]:
    """Case-folded words of *text*, stopwords kept, identifiers split."""
    out: list[str] = []
    for run in _RUN.findall(text):
        if run.isalpha() and (run.islower() or run.isupper() or run[1:].islower()) or run.isdigit():
            out.append(run.lower() if run.isascii() else run.casefold())  # word, Word, WORD, 42
            continue
        parts = _CAMEL.findall(run)
        if len(run) <= 6 and not run.isalpha() and not run.isdigit():
            # k8s, ec2, oauth2: the whole is the word; keep only parts that say something alone.
            out.append(run.casefold())
            out.extend(p.casefold() for p in parts if len(p) > 1)
        else:
            out.extend(p.casefold() for p in parts)
    return out


def _content(word: str) -> bool:
    return word not in _SKIP and (len(word) > 1 or word.isdigit())


_SKIP = STOPWORDS | frozenset("abcdefghijklmnopqrstuvwxyz")


_stems: dict[str, str] = {}


def stem(word: str) -> str:
    """A light, conservative stemmer: plurals, -ing, -ed, -tion and a final -e.

    It only has to make the forms of one word meet (create, creates,
    created, creating, creation -> ``creat``); the stems need not be words.
    """
    found = _stems.get(word)
    if found is None:
        found = _stem(word)
        if len(_stems) > 100_000:
            _stems.clear()
        _stems[word] = found
    return found


def _stem(word: str) -> str:
    w = IRREGULAR.get(word)
    if w is not None:
        if w == word:
            return word
        word = w
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "ches", "shes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    elif word.endswith("ing") and len(word) > 5 and _has_vowel(word[:-3]):
        word = _undouble(word[:-3])
    elif word.endswith("ed") and len(word) > 4 and not word.endswith("eed") and _has_vowel(word[:-2]):
        word = _undouble(word[:-2])
    if word.endswith("tion") and len(word) > 6:
        word = word[:-3]
    if word.endswith("e") and len(word) > 3 and not word.endswith(("ee", "ie", "ye")):
        word = word[:-1]
    return word


def _has_vowel(s: str) -> bool:
    return any(c in "aeiouy" for c in s)


def _undouble(s: str) -> str:
    if len(s) > 3 and s[-1] == s[-2] and s[-1] not in "lsz":
        return s[:-1]
    return s


def normalise(query: str) -> str:
    """The cache key of a query: its words case-folded, de-duplicated and sorted.

    Order matters in one place, so it is kept there: a first word that is a
    verb in disguise ("comment on ...") adds the verb it stands for.
    """
    words = _query_words(query)
    implied = _vocab().imperatives.get(words[0]) if words else None
    return " ".join(sorted(set(words))) + (f" +{implied}" if implied else "")


class _Vocabulary:
    """The tables of :mod:`.vocabulary`, parsed, and keyed by stem where they are looked up."""

    def __init__(self) -> None:
        self.phrases: dict[tuple[str, ...], str] = {}  # contiguous ones, for tool texts
        self.phrases_by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for line in PHRASES.strip().splitlines():
            left, _, right = line.partition("=")
            phrase = tuple(w if w == "*" else stem(w) for w in left.split())  # "pull requests" too
            if "*" not in phrase:
                self.phrases[phrase] = right.strip()
            self.phrases_by_first.setdefault(phrase[0], []).append((phrase, right.strip()))
        self.words: set[str] = set()  # spellings the vocabulary knows
        # Shorthand is read in queries only ("ls" in a tool's text is rare and
        # means itself), exactly as typed: "unstage" is a command, "unstaged" is not.
        self.shorthand: dict[str, list[str]] = {}
        for line in SHORTHAND.strip().splitlines():
            left, _, right = line.partition("=")
            for word in left.split():
                self.shorthand[word] = [*right.split(), word]  # the meaning first: the word then adds only what it adds
        self.words.update(self.shorthand)
        for options in self.phrases_by_first.values():
            options.sort(key=lambda item: -len(item[0]))
        self.phrase_starts = frozenset(p[0] for p in self.phrases)
        self.synonyms = self._groups(SYNONYMS, symmetric=True)
        self.related = self._groups(RELATED, symmetric=False)
        self.actions = frozenset(ACTIONS.split())
        self.action_stems = frozenset(stem(w) for w in self.actions)
        self.lookups = frozenset(stem(w) for w in LOOKUPS.split())
        self.imperatives: dict[str, str] = {}
        for line in IMPERATIVES.strip().splitlines():
            verb, _, nouns = line.partition(":")
            self.imperatives.update((w, verb) for w in nouns.split())
        self._alternatives: dict[str, dict[str, float]] = {}
        self.stems = frozenset(map(stem, self.words))

    def _groups(self, table: str, symmetric: bool) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for line in table.strip().splitlines():
            words = line.split()
            self.words.update(words)
            stems = [stem(w) for w in words]
            for head in stems if symmetric else stems[:1]:
                out.setdefault(head, set()).update(s for s in stems if s != head)
        return out

    def alternatives(self, base: str) -> dict[str, float]:
        """``{stem: weight}`` that may stand for the word whose stem is *base*."""
        found = self._alternatives.get(base)
        if found is None:
            found = {}
            for rel in self.related.get(base, ()):
                found[rel] = RELATED_WEIGHT
            for syn in self.synonyms.get(base, ()):
                found[syn] = SYNONYM_WEIGHT
            found[base] = 1.0
            self._alternatives[base] = found
        return found

    def is_action(self, word: str) -> bool:
        """Whether *word* is a verb ("deleted" is; "downloads", as a noun, is not)."""
        return word in self.actions or (not word.endswith("s") and stem(word) in self.action_stems)


_vocabulary: _Vocabulary | None = None
_vocabulary_lock = threading.Lock()


def _vocab() -> _Vocabulary:
    global _vocabulary
    if _vocabulary is None:
        with _vocabulary_lock:
            if _vocabulary is None:
                _vocabulary = _Vocabulary()
    return _vocabulary


# -- reading queries and tools ---------------------------------------------------


def _query_words(query: str) -> list[str]:
    """The query's words with phrases folded into one word and stopwords dropped."""
    words = _words(query)
    stems = [stem(w) for w in words]
    by_first = _vocab().phrases_by_first
    shorthand = _vocab().shorthand
    out = []
    skip: set[int] = set()
    i = 0
    while i < len(words):
        if i in skip:
            i += 1
            continue
        for phrase, joined in by_first.get(stems[i], ()):
            end = _match_phrase(stems, i, phrase, skip)
            if end is not None:
                out.append(joined)
                if "*" in phrase:
                    skip.add(end - 1)  # a separable verb's particle; the words between stay
                    i += 1
                else:
                    i = end
                break
        else:
            if words[i] in shorthand:
                out.extend(shorthand[words[i]])
            elif _content(words[i]):
                out.append(words[i])
            i += 1
    return out


def _match_phrase(words: list[str], i: int, phrase: tuple[str, ...], skip: set[int]) -> int | None:
    """Where *phrase* matched at *i* ends; ``*`` stands for up to three other words."""
    j = i
    for k, part in enumerate(phrase):
        if part == "*":
            continue
        if k and phrase[k - 1] == "*":
            for j2 in range(j, min(j + 4, len(words))):
                if words[j2] == part and j2 not in skip:
                    j = j2 + 1
                    break
            else:
                return None
        elif j < len(words) and words[j] == part and j not in skip:
            j += 1
        else:
            return None
    return j


def _doc_words(text: str) -> list[str]:
    """A tool field's words, with the word for each phrase it contains added."""
    words = _words(text)
    vocab = _vocab()
    out = [w for w in words if w not in _SKIP]
    starts = vocab.phrase_starts
    stems = [_stems.get(w) or stem(w) for w in words]
    if not starts.isdisjoint(stems):
        for i, s in enumerate(stems):
            if s in starts:
                for n in (2, 3):
                    joined = vocab.phrases.get(tuple(stems[i : i + n]))
                    if joined is not None:
                        out.append(joined)
    return out


def _lead(text: str) -> tuple[str, str]:
    """A description split into its first sentence and the rest (bounded)."""
    m = _SENTENCE_END.search(text, 0, 400)
    if m is None:
        cut = min(len(text), 200)
        return text[:cut], text[cut:BODY_CHARS]
    return text[: m.start()], text[m.end() : BODY_CHARS]


def _params(schema: object) -> tuple[str, str]:
    """Parameter names, and their descriptions and enum values, as two texts."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return "", ""
    names, texts = [], []
    for name, prop in schema["properties"].items():
        names.append(str(name))
        if isinstance(prop, dict):
            if isinstance(prop.get("description"), str):
                texts.append(prop["description"][:300])
            if isinstance(prop.get("enum"), list):
                texts.extend(str(v) for v in prop["enum"][:20])
    return " ".join(names), " ".join(texts)


def _fields(tool: Tool) -> tuple[str, ...]:
    """The texts of *tool*, in the order of :data:`FIELDS`."""
    d = tool.definition
    description = d.get("description") if isinstance(d.get("description"), str) else ""
    title = d.get("title") if isinstance(d.get("title"), str) else ""
    lead, body = _lead(description)
    param, param_text = _params(d.get("inputSchema"))
    return tool.name, title, tool.server, lead, body, param, param_text


# -- spelling -------------------------------------------------------------------


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (adjacent swaps cost 1), capped at *limit* + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        best = i
        for j in range(1, len(b) + 1):
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


# -- the index ------------------------------------------------------------------


class _Concept:
    """One idea of the query: the word typed, the stems standing for it, how much it counts."""

    __slots__ = ("word", "bases", "scale", "names")

    def __init__(self, word: str, bases: dict[str, float], scale: float = 1.0) -> None:
        self.word = word
        self.bases = bases  # {stem: weight}: the word's stem, or its spelling fixes
        self.scale = scale
        self.names: set[str] = set()  # servers it names by part of their name


class Index:
    """An immutable search index over a list of tools.

    Built once per catalog version.  Threading contract: :meth:`search` may
    be called from many threads at once; the parts built on first use are
    built under a lock.
    """

    def __init__(self, tools: list[Tool], fold: bool = True) -> None:
        """*fold*: identical tools of several servers are one entry (see :meth:`copies`)."""
        self.tools, self._copies = _fold(tools) if fold else (list(tools), {})
        vocab = _vocab()
        weights = [WEIGHTS[f] for f in FIELDS]
        bs = [B[f] for f in FIELDS]
        lengths = [LENGTHS[f] for f in FIELDS]
        lookups = vocab.lookups
        stems = _stems
        ids: dict[str, array] = {}
        values: dict[str, array] = {}
        names: dict[str, list[int]] = {}
        surface: set[str] = set()
        self._browse: set[int] = set()
        self._servers: dict[str, list[int]] = {}
        for i, tool in enumerate(self.tools):
            self._servers.setdefault(tool.server, []).append(i)
            weighted: dict[str, float] = {}
            in_name: set[str] = set()
            for k, text in enumerate(_fields(tool)):
                if not text:
                    continue
                words = _doc_words(text)
                if not words:
                    continue
                counts = Counter(words)
                surface.update(counts)
                scale = weights[k] / (1 - bs[k] + bs[k] * len(words) / lengths[k])
                for w, tf in counts.items():
                    s = stems.get(w) or stem(w)
                    weighted[s] = weighted.get(s, 0.0) + tf * scale
                if k < 2:
                    in_name.update(stem(w) for w in counts)
                    for w in set(_words(text)):
                        names.setdefault(w, []).append(i)
            for term, w in weighted.items():
                v = w * (K1 + 1) / (w + K1)
                if term in in_name:
                    v += NAME_BONUS
                found = ids.get(term)
                if found is None:
                    ids[term] = array("i", (i,))
                    values[term] = array("f", (v,))
                else:
                    found.append(i)
                    values[term].append(v)
            if not lookups.isdisjoint(in_name):
                self._browse.add(i)
        # Ties are broken by name; a tool's place in name order is its tie-break key.
        self._order = array("i", bytes(4 * len(self.tools)))
        for place, i in enumerate(sorted(range(len(self.tools)), key=lambda i: self.tools[i].prefixed)):
            self._order[i] = place
        self._postings = {term: (ids[term], values[term]) for term in ids}
        self._names = {w: frozenset(docs) for w, docs in names.items()}
        self._surface = surface
        self._server_keys = self._name_servers()
        self._lock = threading.Lock()
        self._spelling: dict[str, str | tuple[str, ...]] | None = None
        # Every vocabulary word's matches, merged with those of its synonyms,
        # so that a query reads one list per word, however many synonyms.
        self._expanded: dict[str, tuple[array, array]] = {}
        for base in vocab.synonyms.keys() | vocab.related.keys():
            found = self._expand(base)
            if found[0]:
                self._expanded[base] = found
        # The most any one tool gets from a list, for bounding what is left of a query.
        self._peaks = {id(found[1]): max(found[1]) for found in (*self._postings.values(), *self._expanded.values())}

    def copies(self, tool: Tool) -> list[Tool]:
        """The other servers' identical copies of *tool*, a tool this index returned."""
        return self._copies.get(tool.prefixed, [])

    def _name_servers(self) -> dict[str, list[tuple[str, float, bool]]]:
        """``stem -> [(server, how surely it names it, whether a whole word of its name)]``.

        A server is named by a word of its name (``calendar``), its whole name
        run together (``googlecalendar``), or most of it (``mongo``,
        ``drive`` for gdrive).  A word of a server's name that many other
        tools use too ("search", "time") names that server only weakly.
        """
        keys: dict[str, list[tuple[str, float]]] = {}
        self._server_words: dict[str, frozenset[str]] = {}
        for server in self._servers:
            joined = "".join(_words(server))
            words = self._server_words[server] = frozenset(stem(w) for w in _words(server) if w.isalpha() and len(w) > 1)
            candidates: dict[str, float] = {stem(joined): 1.0}
            for w in words:
                candidates.setdefault(w, 1.0)
            pieces = [joined[:k] for k in range(max(4, (len(joined) + 1) // 2), len(joined))]
            if len(joined) > 4:
                pieces.append(joined[1:])
            for piece in pieces:
                candidates.setdefault(stem(piece), PART_NAME)
            for key, kind in candidates.items():
                keys.setdefault(key, []).append((server, kind))
        out: dict[str, list[tuple[str, float, bool]]] = {}
        for key, servers in keys.items():
            named = sum(len(self._servers[s]) for s, _ in servers)
            found = self._postings.get(key)
            distinct = min(1.0, named / len(found[0])) if found is not None else 1.0
            out[key] = [(s, kind * distinct, kind == 1.0) for s, kind in servers]
        return out

    # -- spelling --------------------------------------------------------------

    def _known(self, word: str) -> bool:
        """Whether some tool or the vocabulary spells a word this way."""
        if len(word) < 4 or not word.isalpha() or word in self._surface:
            return True
        vocab = _vocab()  # a form of a word it knows ("draw" for drawing) is not a typo either
        return word in vocab.words or stem(word) in vocab.stems

    def _corrections(self, word: str) -> list[str]:
        """The known words closest to *word*, a likely misspelling."""
        with self._lock:
            if self._spelling is None:
                # Each key holds one word, or a tuple when several share it: sets would cost five times the memory.
                spelling: dict[str, str | tuple[str, ...]] = {}
                for w in sorted(self._surface | _vocab().words):
                    if w.isalpha() and len(w) >= 3:
                        for key in _deletes(w) | {w}:
                            held = spelling.get(key)
                            spelling[key] = w if held is None else (held, w) if isinstance(held, str) else (*held, w)
                self._spelling = spelling
            spelling = self._spelling
        limit = 1 if len(word) < 8 else 2
        candidates: set[str] = set()
        for key in _deletes(word) | {word}:
            held = spelling.get(key)
            if held is not None:
                candidates.update((held,) if isinstance(held, str) else held)
        best: dict[str, int] = {}
        for cand in candidates:
            dist = _edit_distance(word, cand, limit)
            if dist <= limit:
                best[cand] = dist
        if not best:
            return []
        nearest = min(best.values())
        return sorted(c for c, d in best.items() if d == nearest)

    # -- queries -----------------------------------------------------------------

    def _concepts(self, words: list[str]) -> list[_Concept]:
        """One concept per query word; words meaning the same ("create a new") share one."""
        vocab = _vocab()
        concepts: list[_Concept] = []
        for word in words:
            s = stem(word)
            bases = {s: 1.0}
            if not self._known(word):
                # Unknown as spelt: a typo, or a form of a word the catalog
                # spells otherwise; all candidates count, none fully.
                fixes = self._corrections(word)
                if fixes:
                    bases = {stem(c): TYPO_WEIGHT for c in fixes}
                    if s in self._postings:
                        bases[s] = TYPO_WEIGHT
            # "create a new ...": a word meaning what an earlier one already
            # stands for adds nothing.
            if not any(vocab.alternatives(b).get(s, 0.0) >= SYNONYM_WEIGHT for c in concepts for b in c.bases):
                concepts.append(_Concept(word, bases))
        if words and words[0] in vocab.imperatives:
            verb = vocab.imperatives[words[0]]
            concepts.append(_Concept(verb, {stem(verb): 1.0}, IMPLIED_WEIGHT))
        return concepts

    def _expand(self, base: str) -> tuple[array, array]:
        """Tools holding *base* or a word standing for it, each with the best weight."""
        best = _max_merge((self._postings.get(term), weight) for term, weight in _vocab().alternatives(base).items())
        docs = sorted(best)
        return array("i", docs), array("f", map(best.__getitem__, docs))

    def _expansion(self, base: str) -> tuple[array, array] | None:
        return self._expanded.get(base) or self._postings.get(base)

    def _matches(self, concept: _Concept) -> tuple[array, array] | dict[int, float]:
        """Each tool the concept matches, with its weight there."""
        if len(concept.bases) == 1:
            (base, weight), = concept.bases.items()
            if weight == 1.0:
                return self._expansion(base) or (array("i"), array("f"))
        return _max_merge((self._expansion(base), weight) for base, weight in concept.bases.items())

    def _named_servers(self, concepts: list[_Concept]) -> dict[str, float]:
        """Servers the query names, each with how surely (0..1).

        Notes on each concept the servers it names by part of their name
        ("mongo"), where the server's own word cannot match.
        """
        vocab = _vocab()
        found: dict[str, float] = {}
        words_seen: dict[str, set[str]] = {}
        for concept in concepts:
            concept.names = set()
            for base, base_weight in concept.bases.items():
                for term, weight in vocab.alternatives(base).items():
                    weight *= base_weight
                    if weight < SYNONYM_WEIGHT * TYPO_WEIGHT:
                        continue
                    for server, sure, whole in self._server_keys.get(term, ()):
                        if not whole and weight < TYPO_WEIGHT:
                            continue  # only the word as typed names a server by part of its name
                        found[server] = max(found.get(server, 0.0), weight * sure)
                        if whole:
                            words_seen.setdefault(server, set()).add(term)
                        else:
                            concept.names.add(server)
        for server, seen in words_seen.items():
            parts = self._server_words[server]
            if len(parts) > 1 and seen.issuperset(parts):
                found[server] = 1.0  # every word of a name of several words
        named = {s: v for s, v in found.items() if v >= MIN_NAMING}
        for concept in concepts:
            concept.names &= named.keys()
        return named

    def search(self, query: str, limit: int) -> tuple[list[Tool], int]:
        """The best *limit* tools for *query*, and how many match it well."""
        return self.match(query, limit)[:2]

    def match(self, query: str, limit: int) -> tuple[list[Tool], int, bool]:
        """:meth:`search`, and whether the best tool is weak: it matches fewer than half of the query's ideas."""
        words = _query_words(query)
        if not words or not self.tools or limit < 1:
            return [], 0, False
        concepts = self._concepts(words)
        found, total, covered = self._search(concepts, limit)
        return found, total, bool(found) and covered * 2 < len(concepts)

    def _search(self, concepts: list[_Concept], limit: int) -> tuple[list[Tool], int, int]:
        """The best tools, how many match well, and how many concepts the best one matches."""
        n = len(self.tools)
        named = self._named_servers(concepts)
        looks_up = not any(_vocab().is_action(c.word) for c in concepts if c.scale == 1.0)
        lift = 1 + BROWSE if looks_up else 1.0
        # (concept, its tools, their weights, idf, the most one tool can get), rarest first.
        plan = []
        for concept in concepts:
            found = self._matches(concept)
            if isinstance(found, dict):
                docs, vals = found.keys(), found.values()
                peak = max(vals, default=0.0)
            else:
                docs, vals = found
                peak = self._peaks.get(id(vals), 0.0)
            if docs:
                df = len(docs)
                # The concept counts as much as it is rare: its synonyms share its rarity.
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5)) * concept.scale
                plan.append((concept, found, docs, vals, idf, idf * (peak + EXACT_NAME)))
        if not plan:
            return [], 0, 0
        plan.sort(key=lambda step: len(step[2]))
        del plan[MAX_CONCEPTS:]  # a rambling query keeps its most telling words
        live = len(plan)
        left = sum(step[5] for step in plan)
        scores: dict[int, float] = {}
        gains: list[dict[int, float]] = []
        for i, (concept, found, docs, vals, idf, most) in enumerate(plan):
            gained = dict(zip(docs, map(idf.__mul__, vals)))
            self._exact(concept, idf, gained)
            self._even_out(concept, gained)
            gains.append(gained)
            # Add to the running sums, walking the smaller side only.
            if len(gained) < len(scores):
                both = {doc: v + scores[doc] for doc, v in gained.items() if doc in scores}
            else:
                both = {doc: v + gained[doc] for doc, v in scores.items() if doc in gained}
            scores.update(gained)
            scores.update(both)
            left -= most
            rest = plan[i + 1 :]
            # A tool not seen yet can match only the concepts left, so its
            # coverage, and what it can reach, is bounded too.
            reach = left * lift * (1 - COVERAGE + COVERAGE * len(rest) / live)
            if rest and reach < max(scores.values()):
                floor = self._floor(scores, gains, live, limit)
                if reach < floor:
                    # What is left of the query is common words that cannot
                    # lift a tool not yet seen into the top: they only add to
                    # the tools still in the running.
                    self._add_to_running(rest, scores, gains, named, floor, left, lift)
                    break
        return self._rank(scores, gains, live, limit, named, lift)

    def _exact(self, concept: _Concept, idf: float, gained: dict[int, float]) -> None:
        """The word as typed in a tool's name: "dashboards" is list_dashboards more than get_dashboard."""
        for doc in self._names.get(concept.word, ()):
            if doc in gained:
                gained[doc] += idf * EXACT_NAME

    def _even_out(self, concept: _Concept, gained: dict[int, float]) -> None:
        """Part of a server's name ("mongo") counts alike for all its tools, whether or not their text says it."""
        for server in concept.names:
            members = self._servers[server]
            most = max(gained.get(doc, 0.0) for doc in members)
            if most:
                gained.update(dict.fromkeys(members, most))

    def _floor(self, scores: dict[int, float], gains: list[dict[int, float]], live: int, limit: int) -> float:
        """A score the final *limit*-th best tool is sure to reach (coverage can only grow)."""
        top = _best(scores, limit)
        if len(top) < limit:
            return 0.0
        return min(scores[d] * (1 - COVERAGE + COVERAGE * sum(d in g for g in gains) / live) for d in top)

    def _add_to_running(
        self, rest: list, scores: dict[int, float], gains: list[dict[int, float]], named: dict[str, float], floor: float,
        left: float, lift: float,
    ) -> None:  # fmt: skip
        """Score the *rest* of the plan only for tools that can still reach *floor*."""
        target = floor / lift
        running = _at_least(scores, target - left)
        kept: list[int] = []
        top = max(scores.values()) + left
        evened = set().union(*(concept.names for concept, *_ in rest))
        for server, sure in named.items():
            # A named server's tools get a share of the best score on top; when
            # part of its name counts alike for all of them, all stay in.
            reach = lift * (1 + SERVER_FACTOR * sure)
            bonus = SERVER_BONUS * sure * top
            for doc in self._servers[server]:
                v = scores.get(doc, 0.0)
                if v < target - left and (server in evened or (v + left) * reach + bonus >= floor):
                    kept.append(doc)
        for concept, found, docs, vals, idf, most in rest:
            wanted = running + kept
            if isinstance(found, dict):
                lookup = found
            elif len(wanted) * 8 > len(docs):
                lookup = dict(zip(docs, vals))
            else:
                lookup = {}
                end = len(docs)
                for doc in wanted:
                    j = bisect_left(docs, doc)
                    if j < end and docs[j] == doc:
                        lookup[doc] = vals[j]
            gained = {doc: idf * lookup[doc] for doc in wanted if doc in lookup}
            self._exact(concept, idf, gained)
            self._even_out(concept, gained)
            gains.append(gained)
            for doc, v in gained.items():
                scores[doc] = scores.get(doc, 0.0) + v
            # What is left to add shrinks, and so do the tools that can still make it.
            left -= most
            running = [doc for doc in running if scores[doc] + left >= target]

    def _rank(
        self, scores: dict[int, float], gains: list[dict[int, float]], live: int, limit: int, named: dict[str, float], lift: float
    ) -> tuple[list[Tool], int, int]:
        """Adjust the scores of the tools that can still reach the top *limit*, and order them."""
        values = scores.values()
        top = max(values)
        total = sum(map((top * MATCH_SHARE).__le__, values))

        def final(doc: int) -> float:
            v = scores.get(doc, 0.0)
            if live > 1:
                # Tools that cover more of the query beat tools that match one word well.
                v *= 1 - COVERAGE + COVERAGE * sum(doc in g for g in gains) / live
            if lift > 1 and doc in self._browse:
                v *= lift  # a query without a verb ("gmail labels") most often looks things up
            sure = named.get(self.tools[doc].server)
            if sure:
                v = v * (1 + SERVER_FACTOR * sure) + SERVER_BONUS * sure * top
            return v

        # The k-th best of the best k by text is a floor for the final k-th
        # best; a tool whose text score cannot reach it, even lifted, needs
        # no further work, whatever the catalog's size.
        seeds = _best(scores, limit)
        if named:
            members = [(scores.get(doc, 0.0), -doc) for server in named for doc in self._servers[server]]
            seeds += [-doc for _, doc in heapq.nlargest(limit, members)]
        finals = {doc: final(doc) for doc in seeds}
        floor = heapq.nlargest(limit, finals.values())[-1] if len(finals) >= limit else 0.0
        for doc in _at_least(scores, floor / lift):
            if doc not in finals:
                finals[doc] = final(doc)
        for server, sure in named.items():
            reach = (1 + SERVER_FACTOR * sure) * lift
            for doc in self._servers[server]:
                if doc not in finals and scores.get(doc, 0.0) * reach + SERVER_BONUS * sure * top >= floor:
                    finals[doc] = final(doc)
        order = self._order
        ranked = heapq.nsmallest(limit, finals.items(), key=lambda item: (-item[1], order[item[0]]))
        covered = sum(ranked[0][0] in g for g in gains) if ranked else 0
        return [self.tools[doc] for doc, _ in ranked], max(total, len(ranked)), covered


def _fold(tools: list[Tool]) -> tuple[list[Tool], dict[str, list[Tool]]]:
    """One tool per group of identical ones (same name, description and schema), the first by name.

    Two copies of one server under different names would otherwise fill the
    results twice over and push other tools out.  Returns the tools kept and,
    for each kept tool that has copies, the copies.
    """
    groups: dict[object, list[Tool]] = {}
    for tool in tools:
        d = tool.definition
        key = (tool.name, d.get("description"), _canonical(d.get("inputSchema")))
        groups.setdefault(key, []).append(tool)
    kept, copies = [], {}
    for group in groups.values():
        group.sort(key=lambda t: t.prefixed)
        kept.append(group[0])
        if len(group) > 1:
            copies[group[0].prefixed] = group[1:]
    return kept, copies


def _canonical(value: object) -> object:
    """A hashable form of a JSON value in which key order does not matter."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), _canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(map(_canonical, value))
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def topics(tools: list[Tool], most: int = 5) -> list[str]:
    """What a server's tools are about, most common first: the nouns of their names ("issues", "pull requests").

    A server that does not describe itself is summed up by these.  Verbs,
    look-up words, the server's own name and a prefix that most of its tool
    names share (``browser_``, ``kubectl_``) say nothing about it.
    """
    vocab = _vocab()
    skip = {w for t in tools for w in _words(t.server)}
    named: list[list[str]] = []
    for tool in tools:
        words = [w for w in _words(tool.name) if w.isalpha() and len(w) > 2 and w not in STOPWORDS]
        named.append(_join_phrases(words, vocab))
    share: Counter = Counter(w for words in named for w in set(words))
    if len(tools) >= 4:
        skip.update(w for w, n in share.items() if n * 5 >= len(tools) * 3)
    counts: Counter = Counter()
    first_seen: dict[str, int] = {}
    spelled: dict[str, Counter] = {}
    for words in named:
        seen = set()
        for w in words:
            s = stem(w) if " " not in w else w
            if w in skip or s in seen or (" " not in w and (vocab.is_action(w) or s in vocab.lookups)):
                continue
            seen.add(s)
            counts[s] += 1
            first_seen.setdefault(s, len(first_seen))
            spelled.setdefault(s, Counter())[w] += 1
    best = sorted(counts, key=lambda s: (-counts[s], first_seen[s]))[:most]
    return [spelled[s].most_common(1)[0][0] for s in best]


def _join_phrases(words: list[str], vocab: _Vocabulary) -> list[str]:
    """*words* with each two-word phrase the vocabulary knows ("pull requests") as one item."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if i + 1 < len(words) and (stem(words[i]), stem(words[i + 1])) in vocab.phrases:
            out.append(f"{words[i]} {words[i + 1]}")
            i += 2
        else:
            out.append(words[i])
            i += 1
    return out


def _max_merge(lists: Iterable[tuple[tuple[array, array] | None, float]]) -> dict[int, float]:
    """``{tool: best weight × value}`` over (tools, values) lists, Python work only where they overlap."""
    best: dict[int, float] = {}
    for found, weight in lists:
        if found is None:
            continue
        more = dict(zip(found[0], map(weight.__mul__, found[1])))
        if best:
            for doc in more.keys() & best.keys():
                if best[doc] > more[doc]:
                    more[doc] = best[doc]
        best.update(more)
    return best


def _best(scores: dict[int, float], limit: int) -> list[int]:
    """The tools with the *limit* highest scores (more on ties)."""
    if len(scores) <= limit:
        return list(scores)
    kth = heapq.nlargest(limit, scores.values())[-1]
    return _at_least(scores, kth)


def _at_least(scores: dict[int, float], floor: float) -> list[int]:
    """The tools scoring *floor* or more (filtered in C: this runs over every tool scored)."""
    return list(compress(scores.keys(), map(floor.__le__, scores.values())))


class Searcher:
    """Searches a catalog, rebuilding the index only when the catalog changed.

    Threading contract: :meth:`search` may be called from any thread; the
    index is built by one thread while the others wait for it, and the
    query cache is emptied whenever a new index replaces the old one.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._lock = threading.Lock()
        self._index: Index | None = None
        self._version = -1
        self._cache: dict[tuple[str, int, str | None], tuple[list[Tool], int, bool]] = {}
        self._server_indexes: dict[str, Index] = {}  # one per server searched alone, of this version

    def index(self, server: str | None = None) -> Index:
        """The index of the catalog as it is now (built if the catalog changed), or of one *server*'s tools."""
        with self._lock:
            if self._index is None or self._version != self.catalog.version:
                self._version = self.catalog.version
                self._index = Index(self.catalog.tools())
                self._cache.clear()
                self._server_indexes.clear()
            if server is None:
                return self._index
            found = self._server_indexes.get(server)
            if found is None:
                found = self._server_indexes[server] = Index(self.catalog.server_tools(server))
            return found

    def search(self, query: str, limit: int) -> tuple[list[Tool], int]:
        """The best *limit* tools for *query* and how many match it well; cached per normalised query."""
        return self.match(query, limit)[:2]

    def match(self, query: str, limit: int, server: str | None = None) -> tuple[list[Tool], int, bool]:
        """:meth:`Index.match` over the whole catalog or one *server*; cached per normalised query."""
        whole = self.index()
        index = whole if server is None else self.index(server)
        key = (normalise(query), limit, server)
        with self._lock:
            found = self._cache.get(key) if whole is self._index else None
        if found is None:
            found = index.match(query, limit)
            with self._lock:
                if whole is self._index:
                    if len(self._cache) >= QUERY_CACHE_SIZE:
                        self._cache.clear()
                    self._cache[key] = found
        return found

    def copies(self, tool: Tool) -> list[Tool]:
        """Identical copies of *tool* on other servers (folded into it in results)."""
        return self.index().copies(tool)
