"""WordNet 3.0 read straight from its dictionary files into a compact, cached table.

Reading the files takes a few seconds once; the table (each lemma's senses in frequency order,
SemCor tag counts per lemma and sense, synonyms, antonyms, exception lists, each synset's
lexicographer file and gloss) is then cached as a pickle under ``~/.cache/augsvc`` and loads in
a fraction of that.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from augsvc.resources import find_wordnet

__all__ = ["POS", "WordNet", "load_wordnet"]

POS = ("n", "v", "a", "r")
_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
_CACHE_VERSION = 11
_CLOSE = frozenset({"@", "&", "^", "$"})
"""Pointers to synsets that keep a word's meaning, if less precisely: hypernym (dog -> canine),
similar to, also see, verb group. Hyponyms (people -> families) and instances narrow it."""
_SS_TYPES = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}

# WordNet's detachment rules (morphy): suffix -> replacement, per part of speech.
_RULES = {
    "n": [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
          ("men", "man"), ("ies", "y")],
    "v": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
          ("ing", "")],
    "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "r": [],
}


@dataclass
class WordNet:
    """The parts of WordNet augsvc uses.

    Attributes:
        synonyms: (lemma, pos) -> synonym lemmas over all its senses, most frequent sense first
            (multi-word lemmas use spaces: "climb up"; proper nouns keep their capitals).
        exceptions: (inflected form, pos) -> base forms (e.g. ("geese", "n") -> ["goose"]).
        lexnames: synset key "pos:offset" -> lexicographer file, e.g. "noun.animal".
        glosses: synset key -> (gloss, lemmas).
        senses: (lemma, pos) -> its synset keys, most frequent sense first (WordNet's order).
        counts: "lemma|synset key" -> how often the lemma was tagged in that sense in SemCor
            (``index.sense``); absent means never.
        antonyms: lemma -> lemmas WordNet marks as its antonyms, directly or through the
            adjective clusters (fast/slow, so also quick/slow); symmetric, lower case.
        close: synset key -> the synsets one hypernym, similar-to, also-see or verb-group step
            away.
    """

    synonyms: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    exceptions: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    lexnames: dict[str, str] = field(default_factory=dict)
    glosses: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    senses: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    antonyms: dict[str, set[str]] = field(default_factory=dict)
    close: dict[str, set[str]] = field(default_factory=dict)
    _irregular: dict[tuple[str, str], list[str]] = field(default_factory=dict, repr=False)
    _multi_word: frozenset[str] = field(default_factory=frozenset, repr=False)
    _bases: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @property
    def multi_word(self) -> frozenset[str]:
        """Every multi-word lemma ("bring about", "talk show"), lower case, any part of speech."""
        if not self._multi_word:
            self._multi_word = frozenset(lemma for lemma, _ in self.synonyms if " " in lemma)
        return self._multi_word

    def sense_count(self, lemma: str, key: str) -> int:
        """SemCor tag count of ``lemma`` in synset ``key`` (0 when never tagged)."""
        return self.counts.get(f"{lemma.lower()}|{key}", 0)

    def bases(self, form: str) -> frozenset[str]:
        """``form`` and every base WordNet's morphy finds for it, in any part of speech."""
        found = self._bases.get(form)
        if found is None:
            if len(self._bases) > 100_000:
                self._bases.clear()
            found = self._bases[form] = frozenset(
                {form.lower(), *(b for pos in POS for b in self.morphy(form, pos))})
        return found

    def are_close(self, a: str, b: str, pos: str) -> bool:
        """True if a dominant sense of ``a`` and some sense of ``b`` (as ``pos``, any inflection)
        are the same synset, or ``b``'s is one close step from ``a``'s (dogs/domestic dogs,
        dog/canine; not dogs/cats, not people/families)."""
        senses_b = {key for base in self.morphy(b, pos) for key in self.senses.get((base, pos), [])}
        return any(key in senses_b or self.close.get(key, set()) & senses_b
                   for base in self.morphy(a, pos) for key in self.dominant_senses(base, pos))

    def dominant_senses(self, lemma: str, pos: str) -> list[str]:
        """The senses of ``lemma`` tagged in SemCor at least half as often as its most frequent
        one; just the first (WordNet's most frequent) when none was ever tagged."""
        keys = self.senses.get((lemma, pos), [])
        counts = [self.sense_count(lemma, key) for key in keys]
        top = max(counts, default=0)
        if top == 0:
            return keys[:1]
        return [key for key, count in zip(keys, counts, strict=True) if 2 * count >= top]

    def is_common(self, lemma: str, pos: str) -> bool:
        """Is ``lemma`` (lower case) written in lower case in some sense, i.e. not only a name
        (yunnan, africa)?"""
        return any(lemma in self.glosses[key][1] for key in self.senses.get((lemma, pos), []))

    def are_antonyms(self, a: str, b: str) -> bool:
        """True if some base of ``a`` is a WordNet antonym of some base of ``b`` (rising/falling,
        Slowly/quickly); symmetric, any inflection, any case, any part of speech."""
        other = self.bases(b)
        return any(self.antonyms.get(base, set()) & other for base in self.bases(a))

    def morphy(self, form: str, pos: str) -> list[str]:
        """Base forms of ``form`` as ``pos`` that WordNet knows (WordNet's morphy)."""
        form = form.lower()
        found = [b for b in self.exceptions.get((form, pos), []) if (b, pos) in self.synonyms]
        if (form, pos) in self.synonyms:
            found.append(form)
        for suffix, repl in _RULES[pos]:
            if form.endswith(suffix) and len(form) > len(suffix):
                base = form[: len(form) - len(suffix)] + repl
                if (base, pos) in self.synonyms and base not in found:
                    found.append(base)
        return found

    def irregular_forms(self, base: str, pos: str) -> list[str]:
        """The exception-list forms of ``base`` (goose -> geese)."""
        return self.irregular.get((base, pos), [])

    @property
    def irregular(self) -> dict[tuple[str, str], list[str]]:
        """(base, pos) -> irregular forms, the exception lists read backwards."""
        if not self._irregular:
            for (form, pos), bases in self.exceptions.items():
                for base in bases:
                    if base != form:
                        self._irregular.setdefault((base, pos), []).append(form)
        return self._irregular


def _read(folder: Path) -> WordNet:
    lexnames = _lexnames()
    wn = WordNet()
    links = _Links()
    for pos, name in _FILES.items():
        members: dict[int, list[str]] = {}
        with (folder / f"data.{name}").open(encoding="latin-1") as handle:
            for line in handle:
                if line.startswith("  "):
                    continue  # licence header
                head, _, gloss = line.partition(" | ")
                parts = head.split()
                offset, lexfile, count = int(parts[0]), int(parts[1]), int(parts[3], 16)
                lemmas = [_clean(parts[4 + 2 * i], lower=False) for i in range(count)]
                members[offset] = lemmas
                key = f"{pos}:{offset:08d}"
                wn.lexnames[key] = lexnames[lexfile]
                wn.glosses[key] = (gloss.strip(), lemmas)
                links.read(key, lemmas, parts[4 + 2 * count:])
        with (folder / f"index.{name}").open(encoding="latin-1") as handle:
            for line in handle:
                if line.startswith("  "):
                    continue
                parts = line.split()
                lemma, n_synsets, n_pointers = _clean(parts[0]), int(parts[2]), int(parts[3])
                offsets = [int(o) for o in parts[6 + n_pointers: 6 + n_pointers + n_synsets]]
                seen: dict[str, None] = {}
                for offset in offsets:
                    for other in members[offset]:
                        if other.lower() != lemma:
                            seen.setdefault(other)
                wn.synonyms[(lemma, pos)] = list(seen)
                wn.senses[(lemma, pos)] = [f"{pos}:{offset:08d}" for offset in offsets]
        with (folder / f"{name}.exc").open(encoding="latin-1") as handle:
            for line in handle:
                form, *bases = line.split()
                wn.exceptions[(_clean(form), pos)] = [_clean(b) for b in bases]
    # Satellite adjectives (pos "s") share the adjective files and index: nothing else to do.
    wn.close = links.close
    wn.antonyms = _without_synonyms(links.antonyms(wn.glosses), wn)
    if (folder / "index.sense").is_file():  # Debian's wordnet-sense-index; NLTK's copy has it
        with (folder / "index.sense").open(encoding="latin-1") as handle:
            for line in handle:
                sense_key, synset, _, tag_count = line.split()
                if tag_count != "0":
                    lemma, _, lex_sense = sense_key.partition("%")
                    key = f"{_SS_TYPES[lex_sense[0]]}:{synset}"
                    wn.counts[f"{_clean(lemma)}|{key}"] = int(tag_count)
    return wn


def _without_synonyms(antonyms: dict[str, set[str]], wn: WordNet) -> dict[str, set[str]]:
    """Drop the pairs the clusters wrongly oppose: lemmas that share a synset or sit one close
    step apart in some sense (used/utilized: "used" is also a satellite on the other side)."""
    def keys(lemma: str) -> set[str]:
        return {key for pos in POS for key in wn.senses.get((lemma, pos), [])}

    out: dict[str, set[str]] = {}
    for a, others in antonyms.items():
        near = keys(a)
        near |= {k for key in list(near) for k in wn.close.get(key, set())}
        kept = {b for b in others if not near & keys(b)}
        if kept:
            out[a] = kept
    return out


class _Links:
    """Antonym and similar-to pointers, gathered while the data files are read."""

    def __init__(self) -> None:
        self.direct: list[tuple[str, str, str, int]] = []  # (key, source lemma, target key, n)
        self.similar: dict[str, list[str]] = {}
        self.close: dict[str, set[str]] = {}

    def read(self, key: str, lemmas: list[str], rest: list[str]) -> None:
        """Read the pointer fields (``p_cnt`` then 4 fields per pointer) of one synset."""
        pos = key[0]
        for i in range(int(rest[0])):
            symbol, offset, target_pos, source_target = rest[1 + 4 * i: 5 + 4 * i]
            target = f"{'a' if target_pos == 's' else target_pos}:{offset}"
            if symbol == "!":
                source, goal = int(source_target[:2], 16), int(source_target[2:], 16)
                self.direct.append((key, lemmas[source - 1] if source else "", target, goal))
            elif symbol == "&" and pos == "a":
                self.similar.setdefault(key, []).append(target)
            if symbol in _CLOSE and target[0] == pos:
                self.close.setdefault(key, set()).add(target)

    def antonyms(self, glosses: dict[str, tuple[str, list[str]]]) -> dict[str, set[str]]:
        """lemma -> antonym lemmas: the direct pairs, every lemma of their two synsets, and for
        adjectives every lemma of one head's cluster (the head and its similar-to satellites)
        against every lemma of the other's."""
        out: dict[str, set[str]] = {}

        def pair(a: str, b: str) -> None:
            a, b = a.lower(), b.lower()
            if a != b:
                out.setdefault(a, set()).add(b)
                out.setdefault(b, set()).add(a)

        for key, source, target, goal in self.direct:
            if source and goal:
                pair(source, glosses[target][1][goal - 1])
            for a in glosses[key][1]:  # arrive/leave, so also arrive/depart
                for b in glosses[target][1]:
                    pair(a, b)
            if key[0] == "a":
                for one in [key, *self.similar.get(key, [])]:
                    for other in [target, *self.similar.get(target, [])]:
                        for a in glosses[one][1]:
                            for b in glosses[other][1]:
                                pair(a, b)
        return out


def _clean(lemma: str, lower: bool = True) -> str:
    """Index/data spelling -> text: underscores are spaces, adjective markers like (a) dropped."""
    if lemma.endswith(")") and "(" in lemma:
        lemma = lemma[: lemma.index("(")]
    lemma = lemma.replace("_", " ")
    return lemma.lower() if lower else lemma


def _lexnames() -> list[str]:
    """The 45 lexicographer file names, by number (lexnames(5WN); Debian's package lacks the file)."""
    return _LEXNAMES.split()


_LEXNAMES = ("adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute "
             "noun.body noun.cognition noun.communication noun.event noun.feeling noun.food "
             "noun.group noun.location noun.motive noun.object noun.person noun.phenomenon "
             "noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape "
             "noun.state noun.substance noun.time verb.body verb.change verb.cognition "
             "verb.communication verb.competition verb.consumption verb.contact verb.creation "
             "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative "
             "verb.weather adj.ppl")


def _cache_path(folder: Path) -> Path:
    stamp = "|".join(f"{p}:{p.stat().st_size}:{int(p.stat().st_mtime)}"
                     for p in sorted(folder.glob("data.*")))
    digest = hashlib.sha256(f"{_CACHE_VERSION}|{folder}|{stamp}".encode()).hexdigest()[:16]
    root = Path(os.environ.get("AUGSVC_CACHE", Path.home() / ".cache" / "augsvc"))
    return root / f"wordnet-{digest}.pkl"


@lru_cache(maxsize=1)
def load_wordnet() -> WordNet:
    """WordNet from the cache, or read from the dictionary files and cached (once per process).

    Raises:
        ResourceError: WordNet is not installed (the message gives the install command).
    """
    folder = find_wordnet()
    cache = _cache_path(folder)
    if cache.is_file():
        try:
            with cache.open("rb") as handle:
                loaded = pickle.load(handle)
            if isinstance(loaded, WordNet):
                return loaded
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            pass  # a damaged or stale cache is rebuilt below
    wn = _read(folder)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as handle:
            pickle.dump(wn, handle, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(cache)
    except OSError:
        pass  # a read-only home still works, just without the cache
    return wn
