"""WordNet 3.0 read straight from its dictionary files into a compact, cached synonym table.

Reading the files takes a couple of seconds once; the table (lemma -> synonyms per part of
speech, exception lists, each synset's lexicographer file and gloss) is then cached as a pickle
under ``~/.cache/augsvc`` and loads in a fraction of that.
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
_CACHE_VERSION = 3

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
    """

    synonyms: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    exceptions: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    lexnames: dict[str, str] = field(default_factory=dict)
    glosses: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    _irregular: dict[tuple[str, str], list[str]] = field(default_factory=dict, repr=False)

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
        with (folder / f"{name}.exc").open(encoding="latin-1") as handle:
            for line in handle:
                form, *bases = line.split()
                wn.exceptions[(_clean(form), pos)] = [_clean(b) for b in bases]
    # Satellite adjectives (pos "s") share the adjective files and index: nothing else to do.
    return wn


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
