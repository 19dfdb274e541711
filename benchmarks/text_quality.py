"""Do word substitutions keep the meaning? synonym / embedding (/ contextual) on a news and a
movie-review corpus: part of speech in context, non-words, antonyms, sentence-encoder similarity
and hand judgements (see benchmarks/data/text_quality/README.md).

    python benchmarks/text_quality.py [--limit 20] [--out report.md]
    python benchmarks/text_quality.py --extract-corpus gensim-4.4.0-*.whl   # rebuild the corpus
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

# Run as a file (python benchmarks/x.py) the script's folder is on sys.path, not the repository
# root that `benchmarks.` needs (python -m puts the current folder, the root, there itself).
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, cpu_summary, one_thread_per_process, render
from benchmarks.text_judging import (
    Checked,
    Substitution,
    draw_sample,
    is_nonword,
    judge,
    load_dictionary,
    merge_filled_in,
    substitutions,
    write_unjudged,
)

# Run, not imported: one thread per process before numpy and torch load and size their thread pools.
if __name__ == "__main__":
    one_thread_per_process()

DATA = ROOT / "benchmarks" / "data" / "text_quality"
GLOVE_WORDS = 100_000
GOALS = "Goals: ≥80% acceptable, ≥90% POS agreement (coarse), 0 non-words (dictionary), 0 antonyms."

# --------------------------------------------------------------------------- the corpus

_SOURCES = {"news.txt": ("gensim/test/test_data/lee.cor", "latin-1"),
            "reviews.txt": ("gensim/test/test_data/pang_lee_polarity.cor", "cp1252")}
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"']?) +(?=[\"'A-Z])")
_ABBREVIATION = re.compile(r"(?:^|[\s(])(?:(?:[A-Z]\.)+[A-Z]?|Mr|Mrs|Ms|Dr|St|Jr|Gen|Sen|No)\.$")


def news_sentences(documents: str) -> list[str]:
    """One document a line -> its sentences of 8-40 words, de-duplicated, in document order."""
    out: dict[str, None] = {}
    for doc in documents.splitlines():
        doc, start = re.sub(r"\s+", " ", doc).strip(), 0
        parts = []
        for m in _SENTENCE_END.finditer(doc):
            if not m.group(1) and _ABBREVIATION.search(doc[start:m.start()]):
                continue  # "U.S. officials", "Dr. Smith"
            parts.append(doc[start:m.start()] + m.group(1))
            start = m.end()
        parts.append(doc[start:])
        out.update(dict.fromkeys(p for p in parts if 8 <= len(p.split()) <= 40))
    return list(out)


def detokenize(line: str) -> str:
    """A tokenized review line without its label, the tokenization lightly undone."""
    text = re.sub(r"\s+", " ", re.sub(r"^__label__\w+", "", line)).strip()
    text = re.sub(r" ([,.;:!?])", r"\1", text).replace(" 's", "'s")
    text = re.sub(r"(\w) n't\b", r"\1n't", text)
    text = re.sub(r'" ([^"]*?) "', r'"\1"', text)  # " the other " -> "the other"
    return text.replace("( ", "(").replace(" )", ")")


def review_sentences(lines: str) -> list[str]:
    out = (detokenize(line) for line in lines.splitlines())
    return list(dict.fromkeys(s for s in out if 6 <= len(s.split()) <= 40))


def extract_corpus(wheel: Path, folder: Path, count: int = 120) -> dict[str, int]:
    """Write news.txt and reviews.txt (the first ``count`` sentences each) from the gensim 4.4.0
    wheel's test data into ``folder``; returns the sentences written per file."""
    with zipfile.ZipFile(wheel) as z:
        if not any(n.startswith("gensim-4.4.0.dist-info/") for n in z.namelist()):
            raise ValueError(f"{wheel} is not the gensim 4.4.0 wheel")
        texts = {name: z.read(member).decode(encoding)
                 for name, (member, encoding) in _SOURCES.items()}
    found = {"news.txt": news_sentences(texts["news.txt"]),
             "reviews.txt": review_sentences(texts["reviews.txt"])}
    folder.mkdir(parents=True, exist_ok=True)
    for name, sentences in found.items():
        (folder / name).write_text("".join(s + "\n" for s in sentences[:count]), encoding="utf-8")
    return {name: min(count, len(s)) for name, s in found.items()}


def read_corpus(folder: Path, limit: int | None = None) -> dict[str, list[str]]:
    """file name -> its sentences (the first ``limit``), for every ``*.txt`` in ``folder``."""
    corpus = {p.name: [s for s in p.read_text(encoding="utf-8").splitlines() if s.strip()][:limit]
              for p in sorted(folder.glob("*.txt"))}
    if not corpus:
        raise FileNotFoundError(f"no *.txt corpus files in {folder}")
    return corpus


# --------------------------------------------------------------------------- the checks

@lru_cache(maxsize=8192)
def tagged(text: str) -> tuple[tuple[int, int, str | None], ...]:
    """(start, end, Penn tag) of each word of ``text``, as the synonym transform tags them."""
    from augsvc.text.synonym import tag_words
    from augsvc.text.tokens import words

    found = words(text)
    return tuple((w.start, w.end, t) for w, t in zip(found, tag_words(text, found), strict=True))


def pos_tags(sub: Substitution) -> tuple[str | None, str | None]:
    """The tag of the original word in the original sentence and of the substitute (its head if
    several words: the last for nouns, else the first) in the augmented one; None if untagged."""
    before = next((t for s, _, t in tagged(sub.sentence) if s == sub.position), None)
    end = sub.new_position + len(sub.substitute)
    inside = [t for s, e, t in tagged(sub.after) if s >= sub.new_position and e <= end]
    if not inside:
        return before, None
    return before, inside[-1] if (before or "").startswith("NN") else inside[0]


def glove_words() -> frozenset[str]:
    from augsvc.text.vectors import load_vectors

    return frozenset(load_vectors("glove-6b-50d").words[:GLOVE_WORDS])


def check(subs: Sequence[Substitution], dictionary: frozenset[str], glove: frozenset[str]
          ) -> list[Checked]:
    from augsvc.text.wordnet import load_wordnet

    antonyms = getattr(load_wordnet(), "are_antonyms", None)
    return [Checked(s, pos_tags(s), is_nonword(s.substitute, dictionary),
                    is_nonword(s.substitute, glove),
                    None if antonyms is None else bool(antonyms(s.original, s.substitute)))
            for s in subs]


# --------------------------------------------------------------------------- one transform

@dataclass
class Run:
    """One transform over the corpus; per-file facts keyed by corpus file name."""

    transform: str
    sentences: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    checked: list[Checked] = field(default_factory=list)
    similarity: dict[tuple[str, int], float] = field(default_factory=dict)
    judged: list[tuple[Substitution, dict[str, Any]]] = field(default_factory=list)
    unjudged: int = 0


def run_transform(transform: str, spec: dict[str, Any], corpus: dict[str, list[str]],
                  seeds: Sequence[int], batch: int = 16
                  ) -> tuple[Run, list[Substitution], list[tuple[str, int, str, str]]]:
    """Augment every sentence once per seed (index = its number in its file); returns the run,
    the substitutions and (file, index, original, augmented) of every changed sentence."""
    from tqdm import tqdm

    from augsvc.text import TextPipeline

    pipe = TextPipeline({"transforms": [spec]})
    first = next(s for sentences in corpus.values() for s in sentences)
    pipe(first, seed=seeds[0])  # untimed: loads the transform's data and models
    run, subs, changed = Run(transform), [], []
    bar = tqdm(total=len(seeds) * sum(map(len, corpus.values())), desc=transform, file=sys.stderr,
               disable=None)
    for (name, sentences), seed in ((item, s) for s in seeds for item in corpus.items()):
        run.sentences[name] = run.sentences.get(name, 0) + len(sentences)
        run.seconds.setdefault(name, 0.0)
        for lo in range(0, len(sentences), batch):
            t0 = time.perf_counter()
            out = pipe.batch(sentences[lo:lo + batch], seed=seed, start=lo, return_ops=True)
            run.seconds[name] += time.perf_counter() - t0
            for aug in out:
                original = sentences[aug.index]
                subs += substitutions(transform, name, aug.index, original, aug.text, aug.ops or [])
                if aug.text != original:
                    changed.append((name, aug.index, original, aug.text))
            bar.update(len(out))
    bar.close()
    return run, subs, changed


def evaluate(transform: str, spec: dict[str, Any], corpus: dict[str, list[str]], args: Any,
             dictionary: frozenset[str], glove: frozenset[str]) -> Run:
    """Run, check, score similarity and look up the judgements of one transform."""
    from augsvc.text.similarity import load_encoder

    run, subs, changed = run_transform(transform, spec, corpus, args.seeds)
    run.checked = check(subs, dictionary, glove)
    if changed:
        scores = load_encoder().similarity([c[2] for c in changed], [c[3] for c in changed])
        run.similarity = {(c[0], c[1]): s for c, s in zip(changed, scores, strict=True)}
    run.judged, unjudged = judge(draw_sample(subs, args.judge, args.seeds[0]), args.judgements)
    run.unjudged = len(unjudged)
    path = write_unjudged(args.judgements, transform, unjudged)
    total = sum(run.sentences.values())
    print(f"{transform}: {total} sentences, {len(subs)} substitutions, "
          f"{sum(run.seconds.values()):.1f} s in the pipeline; {len(run.judged)} of the sample "
          f"judged, {run.unjudged} unjudged -> {_shown(path)}", file=sys.stderr)
    return run


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# --------------------------------------------------------------------------- the report

COLUMNS = ("transform", "sentences", "substitutions", "subs/sentence", "POS exact %",
           "POS coarse %", "non-words (dict)", "non-words (GloVe 100k)", "antonyms",
           "similarity mean / p10", "judged", "acceptable %", "sent/s", "goals missed")


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "n/a"


def row(run: Run, file: str | None = None) -> list[str]:
    """One table row for ``run``, over all corpus files or just ``file``."""
    files = [file] if file else list(run.sentences)
    checked = [c for c in run.checked if c.sub.file in files]
    sims = sorted(s for (f, _), s in run.similarity.items() if f in files)
    judged = [e for s, e in run.judged if s.file in files]
    sentences, seconds = sum(run.sentences[f] for f in files), sum(run.seconds[f] for f in files)
    n, coarse = len(checked), sum(c.pos_coarse for c in checked)
    ok, nonwords = sum(bool(e["acceptable"]) for e in judged), sum(c.nonword_dict for c in checked)
    antonyms = None if any(c.antonym is None for c in checked) else sum(bool(c.antonym) for c in checked)
    missed = [what for what, bad in (
        ("acceptable", bool(judged) and ok < 0.8 * len(judged)), ("POS", n > 0 and coarse < 0.9 * n),
        ("non-words", nonwords > 0), ("antonyms", bool(antonyms))) if bad]
    if not judged:
        missed.append("(none judged)")
    similarity = "n/a" if not sims else f"{statistics.fmean(sims):.3f} / " + (
        f"{statistics.quantiles(sims, n=10, method='inclusive')[0]:.3f}" if len(sims) > 1 else "n/a")
    return [run.transform + (f" / {file}" if file else ""), str(sentences), str(n),
            f"{n / sentences:.2f}" if sentences else "n/a", _pct(sum(c.pos_exact for c in checked), n),
            _pct(coarse, n), str(nonwords), str(sum(c.nonword_glove for c in checked)),
            "n/a" if antonyms is None else str(antonyms), similarity, str(len(judged)),
            _pct(ok, len(judged)),
            f"{sentences / seconds:,.0f}" if seconds else "n/a", ", ".join(missed) or "none"]


def _line(sub: Substitution, note: str) -> str:
    return f"- `{sub.original}` → `{sub.substitute}` {note}: {sub.marked}"


def failures(run: Run, pos_shown: int = 20) -> list[str]:
    """The failures of one transform as Markdown lines."""
    out = [f"\n### {run.transform}: failures"]
    bad = [(s, e) for s, e in run.judged if not e["acceptable"]]
    out.append(f"\nUnacceptable (judged): {len(bad)} of {len(run.judged)}")
    out += [_line(s, f"({e.get('why') or 'no reason given'})") for s, e in bad]
    nonwords = [c for c in run.checked if c.nonword_dict or c.nonword_glove]
    out.append(f"\nNon-words: {sum(c.nonword_dict for c in nonwords)} not in the dictionary, "
               f"{sum(c.nonword_glove for c in nonwords)} not in GloVe's {GLOVE_WORDS:,} most "
               "frequent words")
    out += [_line(c.sub, "(not in " + " or ".join(w for w, b in (("dictionary", c.nonword_dict),
                                                                 ("GloVe", c.nonword_glove)) if b)
                  + ")") for c in sorted(nonwords, key=lambda c: not c.nonword_dict)]
    antonyms = [c for c in run.checked if c.antonym]
    unknown = any(c.antonym is None for c in run.checked)
    out.append(f"\nAntonyms: {'n/a (WordNet has no are_antonyms)' if unknown else len(antonyms)}")
    out += [_line(c.sub, "") for c in antonyms]
    changes = sorted((c for c in run.checked if not c.pos_exact), key=lambda c: c.pos_coarse)
    coarse = sum(not c.pos_coarse for c in changes)
    out.append(f"\nPOS changes: {coarse} coarse, {len(changes) - coarse} within the coarse class"
               f"{f' (first {pos_shown} shown)' if len(changes) > pos_shown else ''}")
    out += [_line(c.sub, f"({c.tags[0] or '?'} → {c.tags[1] or '?'})") for c in changes[:pos_shown]]
    return out


def report(runs: Sequence[Run], corpus: dict[str, list[str]], specs: dict[str, dict[str, Any]],
           seeds: Sequence[int]) -> str:
    lines = ["# Word substitution quality", "",
             "corpus: " + ", ".join(f"{name} ({len(s)} sentences)" for name, s in corpus.items())
             + f"; seeds {', '.join(map(str, seeds))} (sentences counted once per seed); "
             + cpu_summary(),
             "specs: " + "; ".join(json.dumps(s) for s in specs.values()),
             "sent/s: wall time of the pipeline calls only (batches of 16, after one warm-up "
             "call), informational", "", GOALS, "",
             render(COLUMNS, [row(r) for r in runs], markdown=True), "", "Per corpus file:", "",
             render(COLUMNS, [row(r, f) for r in runs for f in r.sentences], markdown=True)]
    lines += ["", "Judgement sample: " + "; ".join(
        f"{r.transform} {len(r.judged)} judged, {r.unjudged} unjudged" for r in runs)
        + " (unjudged ones: unjudged_<transform>.jsonl next to the judgements file)"]
    for run in runs:
        lines += failures(run)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transforms", help="comma-separated (default synonym,embedding[,contextual "
                    "with --mlm])")
    ap.add_argument("--mlm", help="masked LM folder or id for the contextual transform")
    ap.add_argument("--spec", action="append", default=[], metavar="T=JSON",
                    help='override fields of transform T, e.g. synonym=\'{"top_n": 3}\'')
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1],
                    help="comma-separated; the corpus is augmented once per seed (default 0,1)")
    ap.add_argument("--limit", type=int, help="the first N sentences of each corpus file")
    ap.add_argument("--judge", type=int, default=120, help="substitutions sampled per transform")
    ap.add_argument("--corpus", type=Path, default=DATA, help="folder of *.txt, one sentence a line")
    ap.add_argument("--judgements", type=Path, default=DATA / "judgements.jsonl")
    ap.add_argument("--out", type=Path, help="also write the report here")
    ap.add_argument("--extract-corpus", type=Path, metavar="WHEEL",
                    help="rebuild the corpus files from the gensim 4.4.0 wheel and exit")
    args = ap.parse_args(argv)
    default = "synonym,embedding" + (",contextual" if args.mlm else "")
    args.transforms = [t.strip() for t in (args.transforms or default).split(",") if t.strip()]
    if "contextual" in args.transforms and not args.mlm:
        ap.error("contextual needs --mlm PATH (a masked language model)")
    args.specs = {t: {"name": t, "aug_p": 0.3, **({"model": args.mlm} if t == "contextual" else {})}
                  for t in args.transforms}
    for item in args.spec:
        name, _, raw = item.partition("=")
        if name not in args.specs:
            ap.error(f"--spec {item}: {name} is not among --transforms")
        try:
            args.specs[name].update(json.loads(raw))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            ap.error(f"--spec {item}: not a JSON object ({exc})")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.extract_corpus:
        counts = extract_corpus(args.extract_corpus, args.corpus)
        print(", ".join(f"{args.corpus / n}: {c} sentences" for n, c in counts.items()))
        return 0
    try:
        dictionary = load_dictionary()
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    corpus = read_corpus(args.corpus, args.limit)
    merged = merge_filled_in(args.judgements, args.transforms)
    if merged:
        print(f"{merged} filled-in judgements moved into {_shown(args.judgements)}", file=sys.stderr)
    glove = glove_words()
    runs = [evaluate(t, args.specs[t], corpus, args, dictionary, glove) for t in args.transforms]
    text = report(runs, corpus, args.specs, args.seeds)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    unjudged = sum(r.unjudged for r in runs)
    print(f"{unjudged} sampled substitutions are unjudged" + (
        f": fill in acceptable/why in {_shown(args.judgements.parent)}/unjudged_*.jsonl and run again"
        if unjudged else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
