"""Substitutions as records, and the hand judgements of the text quality harness.

A judgement is one JSON object per line of ``judgements.jsonl``::

    {"transform": "synonym", "sentence": "...", "position": 17, "original": "bought",
     "substitute": "purchased", "acceptable": true, "why": "short reason"}

keyed by (transform, sentence, position, original, substitute): it stays valid for as long as a
run produces that substitution again. Each run draws a seeded sample of its substitutions per
transform and writes the sampled ones nobody has judged yet to ``unjudged_<transform>.jsonl``
next to the judgements file, with ``"acceptable": null`` and the augmented sentence under
``"after"`` (the substitute marked ``[[like this]]``). Filling in ``acceptable`` and ``why`` there
and running again moves those lines into ``judgements.jsonl``.

Also the checks of a substitution that need no model (non-words), and what they found.
Only the standard library: the tests import it without the models.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DICTIONARY = Path("/usr/share/dict/american-english-large")  # Debian package wamerican-large
BRITISH = Path("/usr/share/dict/british-english-large")  # Debian package wbritish-large
Key = tuple[str, str, int, str, str]
FIELDS = ("transform", "sentence", "position", "original", "substitute", "acceptable", "why")


@dataclass(frozen=True)
class Substitution:
    """One word replaced by a transform in one corpus sentence.

    ``position`` is the original word's offset in ``sentence``; ``new_position`` is the
    substitute's offset in ``after``, the augmented sentence.
    """

    transform: str
    file: str
    index: int
    sentence: str
    after: str
    position: int
    original: str
    substitute: str
    new_position: int

    @property
    def key(self) -> Key:
        return (self.transform, self.sentence, self.position, self.original, self.substitute)

    @property
    def marked(self) -> str:
        """The augmented sentence with the substitute marked: ``... [[purchased]] ...``."""
        end = self.new_position + len(self.substitute)
        return f"{self.after[:self.new_position]}[[{self.substitute}]]{self.after[end:]}"


def new_offsets(ops: Sequence[Mapping[str, Any]]) -> list[int]:
    """Where each substitution of ``ops`` starts in the augmented text, in the order of ``ops``.

    Op positions are offsets in the original text (all edits of a transform apply at once), so
    an edit moves every later one by ``len(substitute) - len(original)``.
    """
    order = sorted(range(len(ops)), key=lambda i: ops[i]["position"])
    out = [0] * len(ops)
    delta = 0
    for i in order:
        out[i] = ops[i]["position"] + delta
        delta += len(ops[i]["substitute"]) - len(ops[i]["original"])
    return out


def substitutions(transform: str, file: str, index: int, sentence: str, after: str,
                  ops: Sequence[Mapping[str, Any]]) -> list[Substitution]:
    """The word substitutions ``transform`` recorded in ``ops`` for one sentence.

    Raises:
        ValueError: an op's substitute is not where its offsets say (the ops and text disagree).
    """
    mine = [op for op in ops if op.get("op") == transform and "substitute" in op
            and op.get("original")]
    out = []
    for op, at in zip(mine, new_offsets(mine), strict=True):
        if after[at:at + len(op["substitute"])] != op["substitute"]:
            raise ValueError(f"{transform}: {op} is not at {at} of {after!r}")
        out.append(Substitution(transform, file, index, sentence, after, op["position"],
                                op["original"], op["substitute"], at))
    return out


def draw_sample(subs: Sequence[Substitution], count: int, seed: int, per_sentence: int = 2
                ) -> list[Substitution]:
    """A seeded random sample of ``count`` substitutions of one transform, drawn over all corpus
    files, at most ``per_sentence`` from any one sentence; the same input gives the same sample."""
    ordered = sorted(subs, key=lambda s: (s.transform, s.file, s.index, s.position, s.substitute))
    transforms = sorted({s.transform for s in ordered})
    random.Random(f"{seed}:{','.join(transforms)}").shuffle(ordered)
    taken: dict[tuple[str, int], int] = {}
    out: list[Substitution] = []
    for sub in ordered:
        if len(out) == count:
            break
        where = (sub.file, sub.index)
        if taken.get(where, 0) < per_sentence:
            taken[where] = taken.get(where, 0) + 1
            out.append(sub)
    return out


def load_dictionary(paths: Sequence[Path] = (DICTIONARY, BRITISH)) -> frozenset[str]:
    """The lower-cased words of one-word-a-line dictionary files (by default SCOWL's large
    American and British lists: "honouring" and "honoring" are both words)."""
    words: set[str] = set()
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: install the Debian packages "
                                    "wamerican-large and wbritish-large (apt-get install "
                                    "wamerican-large wbritish-large)")
        words |= {w.strip().lower() for w in path.read_text(encoding="utf-8").splitlines()}
    return frozenset(words)


def is_nonword(substitute: str, vocabulary: frozenset[str]) -> bool:
    """Some space- or hyphen-separated part of ``substitute`` is not in ``vocabulary``."""
    return any(p not in vocabulary for p in re.split(r"[\s-]+", substitute.lower()) if p)


@dataclass
class Checked:
    """What the checks found for one substitution: the Penn tags (original word, substitute in
    context), whether it is a non-word by the dictionary and by GloVe, whether an antonym."""

    sub: Substitution
    tags: tuple[str | None, str | None]
    nonword_dict: bool
    nonword_glove: bool
    antonym: bool | None  # None: WordNet has no are_antonyms

    @property
    def pos_exact(self) -> bool:
        return self.tags[0] is not None and self.tags[0] == self.tags[1]

    @property
    def pos_coarse(self) -> bool:
        a, b = self.tags
        return a is not None and b is not None and a[:2] == b[:2]


def entry_key(entry: Mapping[str, Any]) -> Key:
    return (entry["transform"], entry["sentence"], int(entry["position"]), entry["original"],
            entry["substitute"])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file (blank lines skipped; none if the file is missing)."""
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: {exc}") from exc
    return out


def write_jsonl(path: Path, entries: Iterable[Mapping[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries),
                    encoding="utf-8")


def unjudged_path(judgements: Path, transform: str) -> Path:
    return judgements.parent / f"unjudged_{transform}.jsonl"


def merge_filled_in(judgements: Path, transforms: Iterable[str]) -> int:
    """Move the lines a person filled in (``acceptable`` true or false) from the unjudged files
    of ``transforms`` into the judgements file; returns how many. Every judgement already in the
    file is kept; a newer judgement of the same substitution replaces it in place."""
    filled = [e for t in transforms for e in read_jsonl(unjudged_path(judgements, t))
              if isinstance(e.get("acceptable"), bool)]
    if not filled:
        return 0
    merged = {entry_key(e): e for e in read_jsonl(judgements)}
    for entry in filled:
        merged[entry_key(entry)] = {f: entry.get(f, "") for f in FIELDS}
    write_jsonl(judgements, merged.values())
    return len(filled)


def judge(sample: Sequence[Substitution], judgements: Path
          ) -> tuple[list[tuple[Substitution, dict[str, Any]]], list[Substitution]]:
    """The sampled substitutions with a judgement (and it), and those without one."""
    known = {entry_key(e): e for e in read_jsonl(judgements)
             if isinstance(e.get("acceptable"), bool)}
    judged = [(s, known[s.key]) for s in sample if s.key in known]
    return judged, [s for s in sample if s.key not in known]


def write_unjudged(judgements: Path, transform: str, unjudged: Sequence[Substitution]) -> Path:
    """Write the unjudged sample of ``transform`` for a person to fill in; returns the path."""
    path = unjudged_path(judgements, transform)
    write_jsonl(path, ({"transform": s.transform, "sentence": s.sentence, "position": s.position,
                        "original": s.original, "substitute": s.substitute, "acceptable": None,
                        "why": "", "after": s.marked}
                       for s in sorted(unjudged, key=lambda s: (s.file, s.index, s.position))))
    return path
