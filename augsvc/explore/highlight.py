"""Where each edit a text pipeline reports lies in the augmented text, for highlighting.

A text pipeline's ops (``return_ops``) give each edit's position in the text *that transform
saw*: the edits of one transform are applied together, and the next transform's positions are
in the text that came out. The ops do not say where one transform ends and the next begins, so
:func:`segments` replays them, grouping consecutive edits of the same op into one application
(``augsvc.text.tokens.apply_edits``, the pipeline's own), and accepts a grouping only when the
replay gives exactly the augmented text. Each edit then has a span in the final text; an edit
that a later one overwrote becomes that edit's ``history``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from augsvc.text.tokens import Edit, apply_edits

__all__ = ["Segment", "segments"]

_MAX_STEPS = 5000
"""Groupings tried per text at most; a sample's ops are a handful, so this is never reached
unless the ops do not belong to the text."""


@dataclass(frozen=True)
class Segment:
    """A run of the augmented text: unchanged (``op`` None) or one edit.

    Attributes:
        text: the run as it stands in the augmented text ("" for a deleted word).
        op: the transform that made it (``synonym``, ``random_swap``, ...), or None.
        original: the word it replaced ("" for an insertion).
        position: the op's recorded position (in the text that transform saw).
        history: earlier edits of the same words, oldest first, as ``{"op", "original"}``.
    """

    text: str
    op: str | None = None
    original: str | None = None
    position: int | None = None
    history: tuple[Mapping[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """As the API sends it: ``{"text"}`` for an unchanged run."""
        if self.op is None:
            return {"text": self.text}
        return {"text": self.text, "op": self.op, "original": self.original,
                "position": self.position, "history": [dict(h) for h in self.history]}


@dataclass(frozen=True)
class _Mark:
    """An edit's span in the current text, and what the segment will say about it."""

    start: int
    end: int
    op: str
    original: str
    position: int
    history: tuple[Mapping[str, str], ...] = ()


@dataclass(frozen=True)
class _Step:
    """One positional op as the edit it made, with its mark-to-be."""

    edit: Edit
    shown: int  # characters of the edit's text that are the word (an insertion adds a space)
    op: str
    original: str
    position: int


def _steps(ops: Sequence[Mapping[str, Any]]) -> list[_Step] | None:
    """The ops that edited words (those with a position), or None for an op of unknown shape."""
    steps = []
    for op in ops:
        if "position" not in op:  # semantic_filter's verdict, not an edit
            continue
        position, original, substitute = op.get("position"), op.get("original"), op.get("substitute")
        if not (isinstance(position, int) and isinstance(original, str) and isinstance(substitute, str)):
            return None
        name = str(op.get("op", ""))
        if not original:  # random_insertion writes the word and a space at a word's start
            steps.append(_Step(Edit(position, position, substitute + " "), len(substitute), name,
                               original, position))
        else:
            steps.append(_Step(Edit(position, position + len(original), substitute), len(substitute),
                               name, original, position))
    return steps


def _fits(step: _Step, text: str) -> bool:
    """Whether the op could have been made on ``text``: its original stands at its position."""
    e = step.edit
    return 0 <= e.start <= len(text) and text[e.start:e.end] == step.original


def _apply(text: str, group: Sequence[_Step], marks: Sequence[_Mark]
           ) -> tuple[str, list[_Mark]] | None:
    """Apply ``group`` as one transform did, carrying ``marks`` over; None if its edits overlap.

    Mirrors ``apply_edits`` (a deleted word takes one neighbouring space along) to learn where
    each edit lands, and checks the text it builds against ``apply_edits`` itself.
    """
    kept: list[tuple[int, int, int]] = []  # (old start, old end, new start) of unchanged runs
    placed: list[_Mark] = []
    pieces: list[str] = []
    pos = size = 0
    for step in sorted(group, key=lambda s: s.edit.start):
        start, end = step.edit.start, step.edit.end
        if start < pos:
            return None
        if not step.edit.new:
            if end < len(text) and text[end] == " " and (start == 0 or text[start - 1] in " \n"):
                end += 1
            elif start > pos and text[start - 1] == " ":
                start -= 1
        kept.append((pos, start, size))
        pieces += [text[pos:start], step.edit.new]
        size += start - pos
        # the words this edit replaces may carry an earlier edit: it becomes this one's history
        history = tuple(h for m in marks if (m.start, m.end) == (step.edit.start, step.edit.end)
                        and m.end > m.start
                        for h in (*m.history, {"op": m.op, "original": m.original}))
        placed.append(_Mark(size, size + step.shown, step.op, step.original, step.position,
                            history))
        size += len(step.edit.new)
        pos = end
    kept.append((pos, len(text), size))
    pieces.append(text[pos:])
    result = "".join(pieces)
    if result != apply_edits(text, [s.edit for s in group]):
        return None
    moved = []
    for m in marks:
        run = next(((a, n) for a, b, n in kept if a <= m.start and m.end <= b), None)
        if run is not None:
            moved.append(_Mark(run[1] + m.start - run[0], run[1] + m.end - run[0], m.op,
                               m.original, m.position, m.history))
    return result, moved + placed


def _replay(steps: Sequence[_Step], text: str, augmented: str) -> list[_Mark] | None:
    """The marks of a grouping of ``steps`` that turns ``text`` into ``augmented``, or None.

    Depth first: an op joins the current group when it has the group's name and fits the
    group's text, else (or when that fails further on) it starts the next group.
    """
    budget = [_MAX_STEPS]

    def search(i: int, text: str, group: list[_Step], marks: list[_Mark]) -> list[_Mark] | None:
        budget[0] -= 1
        if budget[0] < 0:
            return None
        if i == len(steps):
            done = _apply(text, group, marks) if group else (text, marks)
            return done[1] if done is not None and done[0] == augmented else None
        step = steps[i]
        if group and step.op == group[0].op and _fits(step, text) and \
                (found := search(i + 1, text, [*group, step], marks)) is not None:
            return found
        after = _apply(text, group, marks) if group else (text, marks)
        if after is None or not _fits(step, after[0]):
            return None
        return search(i + 1, after[0], [step], after[1])

    return search(0, text, [], [])


def segments(source: str, ops: Sequence[Mapping[str, Any]], augmented: str) -> list[Segment] | None:
    """``augmented`` cut into unchanged runs and the edits ``ops`` report, in text order.

    Args:
        source: the text before augmentation.
        ops: the augmented text's ops, as ``TextPipeline.batch(..., return_ops=True)`` (or the
            service) gives them.
        augmented: the augmented text.

    Returns:
        Segments whose texts join to ``augmented`` (a deleted word is an empty segment where it
        was), or None when the ops cannot be replayed into ``augmented``.
    """
    steps = _steps(ops)
    if steps is None:
        return None
    marks = _replay(steps, source, augmented)
    if marks is None:
        return None
    out: list[Segment] = []
    pos = 0
    for m in sorted(marks, key=lambda m: (m.start, m.end)):
        if m.start < pos:  # cannot happen for a valid replay; refuse rather than mis-draw
            return None
        if m.start > pos:
            out.append(Segment(augmented[pos:m.start]))
        out.append(Segment(augmented[m.start:m.end], m.op, m.original, m.position, m.history))
        pos = m.end
    if pos < len(augmented) or not out:
        out.append(Segment(augmented[pos:]))
    return out
