"""Does counter-fitting GloVe 6B 50d to WordNet (Mrkšić et al., 2016) pay for the embedding
transform? Counter-fits the 50,000 most frequent words once (cached under ~/.cache/augsvc, or
$AUGSVC_CACHE, as a word2vec text file), then compares plain and counter-fitted vectors: their
top-10 neighbours of the corpus words, and the embedding transform's substitutions on the
text_quality corpus with related=any and related=wordnet.

    python benchmarks/counter_fitting.py [--out report.md] [--refit]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Run as a file (python benchmarks/x.py) the script's folder is on sys.path, not the repository
# root that `benchmarks.` needs (python -m puts the current folder, the root, there itself).
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, cpu_summary, one_thread_per_process, render

# Run, not imported: one thread per process before numpy and torch load and size their thread pools.
if __name__ == "__main__":
    one_thread_per_process()

if TYPE_CHECKING:
    import torch

    from augsvc.text.wordnet import WordNet

DATA = ROOT / "benchmarks" / "data" / "text_quality"
FILES = ("news.txt", "reviews.txt")
PLAIN = "glove-6b-50d"
# Mrkšić et al. 2016: delta, gamma, rho and equal weights k1 = k2 = k3; 20 full-batch steps in which
# each word moves by STEP times the mean of its active constraints' gradients (the reference code's
# update, whose k = 0.1 is this STEP), rows renormalised after every step.
SETTINGS: dict[str, Any] = {"source": PLAIN, "vocab": 50_000, "delta": 1.0, "gamma": 0.0,
                            "rho": 0.2, "k1": 1.0, "k2": 1.0, "k3": 1.0, "step": 0.1,
                            "iterations": 20, "version": 1}
TOP_K, THRESHOLD, EXAMPLES = 10, 0.7, 15
POS = ("n", "v", "a", "r")
RELATED = ("any", "wordnet")


# --------------------------------------------------------------------------- counter-fitting

def constraints(wn: WordNet, row: dict[str, int]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(synonym pairs, antonym pairs) as sorted (row, row) with row < row, both words in ``row``:
    single-word lemmas sharing a synset, and ``wn.antonyms``; pairs that are both are antonyms."""
    syn: set[tuple[int, int]] = set()
    for _, lemmas in wn.glosses.values():
        rows = sorted({row[w] for w in (lemma.lower() for lemma in lemmas) if " " not in w and w in row})
        syn.update((a, b) for i, a in enumerate(rows) for b in rows[i + 1:])
    ant = {(min(row[a], row[b]), max(row[a], row[b])) for a, others in wn.antonyms.items()
           if a in row for b in others if b in row and b != a}
    return sorted(syn - ant), sorted(ant)


def vsp_pairs(unit: torch.Tensor, rho: float, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair (i < j) within cosine distance ``rho``, and that distance, by chunked products."""
    import torch

    pairs, dists = [], []
    for lo in range(0, unit.shape[0], chunk):
        scores = unit[lo:lo + chunk] @ unit[lo:].T
        r, c = torch.nonzero(scores >= 1.0 - rho, as_tuple=True)
        keep = c > r  # columns start at row lo: the diagonal is c == r
        pairs.append(torch.stack([r[keep] + lo, c[keep] + lo], 1))
        dists.append(1.0 - scores[r[keep], c[keep]])
    return torch.cat(pairs), torch.cat(dists)


def counter_fit(unit: torch.Tensor, syn: torch.Tensor, ant: torch.Tensor, vsp: torch.Tensor,
                vsp_dist: torch.Tensor, s: dict[str, Any]) -> torch.Tensor:
    """Full-batch gradient descent on k1*AR + k2*SA + k3*VSP with d = 1 - cos of unit rows."""
    import torch

    x = unit.clone()
    terms = ((ant, s["k1"], -1.0), (syn, s["k2"], 1.0), (vsp, s["k3"], 1.0))
    for _ in range(s["iterations"]):
        grad, count = torch.zeros_like(x), torch.zeros(x.shape[0])
        for (pairs, weight, sign), limit in zip(terms, (s["delta"], s["gamma"], vsp_dist), strict=True):
            u, w = x[pairs[:, 0]], x[pairs[:, 1]]
            cos = (u * w).sum(1)
            # AR: max(0, delta - d) pushes d up; SA: max(0, d - gamma) and VSP: max(0, d' - d) pull it down.
            active = (1.0 - cos < limit) if sign < 0 else (1.0 - cos > limit)
            u, w, cos, i, j = u[active], w[active], cos[active, None], pairs[active, 0], pairs[active, 1]
            # d(1 - u.w)/du on the unit sphere is u (u.w) - w
            grad.index_add_(0, i, sign * weight * (u * cos - w))
            grad.index_add_(0, j, sign * weight * (w * cos - u))
            ones = torch.ones(len(i))
            count.index_add_(0, i, ones)
            count.index_add_(0, j, ones)
        x = x - s["step"] * grad / count.clamp(min=1.0)[:, None]
        x = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return x


def write_word2vec(path: Path, words: Sequence[str], matrix: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(f"{len(words)} {matrix.shape[1]}\n")
        for word, vec in zip(words, matrix.tolist(), strict=True):
            f.write(word + " " + " ".join(f"{v:.6f}" for v in vec) + "\n")
    tmp.replace(path)


def pair_cos(unit: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    return (unit[pairs[:, 0]] * unit[pairs[:, 1]]).sum(1)


def ensure_counter_fitted(wn: WordNet, refit: bool) -> tuple[Path, dict[str, Any]]:
    """The counter-fitted file (fitted now unless cached) and what the fit did (its JSON sidecar)."""
    import torch

    from augsvc.text.vectors import load_vectors

    plain = load_vectors(PLAIN)
    n = SETTINGS["vocab"]
    words = plain.words[:n]
    syn, ant = constraints(wn, {w: i for i, w in enumerate(words)})
    digest = hashlib.sha256(json.dumps([SETTINGS, syn, ant]).encode()).hexdigest()[:16]
    root = Path(os.environ.get("AUGSVC_CACHE", Path.home() / ".cache" / "augsvc"))  # as wordnet.py
    path = root / f"glove-6b-50d-counterfit-{digest}.txt"
    info_path = path.with_suffix(".json")
    if path.is_file() and info_path.is_file() and not refit:
        info = json.loads(info_path.read_text())
        info["cached"] = True
        return path, info
    t0 = time.perf_counter()
    unit = plain.unit(n).clone()
    vsp, vsp_dist = vsp_pairs(unit, SETTINGS["rho"])
    antonym_set = {(int(a), int(b)) for a, b in ant}
    keep = torch.tensor([(int(a), int(b)) not in antonym_set for a, b in vsp.tolist()], dtype=torch.bool)
    vsp, vsp_dist = vsp[keep], vsp_dist[keep]
    t_vsp = time.perf_counter() - t0
    syn_t, ant_t = torch.tensor(syn), torch.tensor(ant)
    fitted = counter_fit(unit, syn_t, ant_t, vsp, vsp_dist, SETTINGS)
    t_fit = time.perf_counter() - t0 - t_vsp
    write_word2vec(path, words, fitted.numpy())
    info = {"synonym_pairs": len(syn), "antonym_pairs": len(ant), "vsp_pairs": len(vsp),
            "vsp_subsampled": False, "vsp_seconds": round(t_vsp, 1), "fit_seconds": round(t_fit, 1),
            "write_seconds": round(time.perf_counter() - t0 - t_vsp - t_fit, 1),
            "fitted": datetime.datetime.now().isoformat(timespec="seconds"), "settings": SETTINGS}
    for name, pairs in (("antonym", ant_t), ("synonym", syn_t), ("vsp", vsp)):
        before, after = pair_cos(unit, pairs), pair_cos(fitted, pairs)
        info[f"{name}_cos"] = [round(float(before.mean()), 3), round(float(after.mean()), 3)]
    info["antonyms_cos_le_0"] = [round(float((pair_cos(m, ant_t) <= 0).float().mean()), 3)
                                 for m in (unit, fitted)]
    info["vsp_farther"] = round(float((1 - pair_cos(fitted, vsp) > vsp_dist + 1e-6).float().mean()), 3)
    info_path.write_text(json.dumps(info, indent=1))
    info["cached"] = False
    return path, info


# --------------------------------------------------------------------------- WordNet relations

_REL: dict[tuple[str, str], tuple[bool, bool, bool, bool]] = {}


def relation(wn: WordNet, a: str, b: str) -> tuple[bool, bool, bool, bool]:
    """(antonym, synonym, close, same lemma) of ``b`` to ``a``. Synonym: some sense shared in some
    part of speech; close: ``are_close`` in some part of speech; both only for different lemmas."""
    key = (a.lower(), b.lower())
    if key not in _REL:
        a, b = key
        same = bool(wn.bases(a) & wn.bases(b))

        def senses(w: str, pos: str) -> set[str]:
            return {k for base in wn.morphy(w, pos) for k in wn.senses.get((base, pos), [])}

        syn = not same and any(senses(a, pos) & senses(b, pos) for pos in POS)
        close = not same and any(wn.are_close(a, b, pos) for pos in POS)
        _REL[key] = (wn.are_antonyms(a, b), syn, close, same)
    return _REL[key]


def shares(wn: WordNet, pairs: Iterable[tuple[str, str]]) -> list[float]:
    """Percent antonym, synonym, close, same lemma among ``pairs`` (query, neighbour)."""
    flags = [relation(wn, a, b) for a, b in pairs]
    return [100.0 * sum(f[k] for f in flags) / max(1, len(flags)) for k in range(4)]


def pct(x: float) -> str:
    return f"{x:.1f}%"


# --------------------------------------------------------------------------- measurements

def read_corpus() -> dict[str, list[str]]:
    """The quality benchmark's corpus, read by its own reader."""
    from benchmarks.text_quality import read_corpus as read_quality_corpus

    corpus = read_quality_corpus(DATA)
    return {name: corpus[name] for name in FILES}


def query_words(corpus: dict[str, list[str]], vocab: dict[str, int]) -> list[str]:
    from augsvc.text.stopwords import STOPWORDS
    from augsvc.text.tokens import words

    found = {w.text.lower() for lines in corpus.values() for line in lines for w in words(line)}
    return sorted(w for w in found if w.isalpha() and w not in STOPWORDS
                  and vocab.get(w, SETTINGS["vocab"]) < SETTINGS["vocab"])


def intrinsic(wn: WordNet, sources: dict[str, str], queries: list[str]) -> tuple[list[list[str]], dict]:
    from augsvc.text.vectors import load_vectors

    rows, nums = [], {}
    for label, source in sources.items():
        near = load_vectors(source).neighbours(queries, k=TOP_K, vocab_size=SETTINGS["vocab"])
        for subset, keep in (("top-10", -2.0), (f"top-10, cos ≥ {THRESHOLD}", THRESHOLD)):
            pairs = [(q, n) for q, found in zip(queries, near, strict=True) for n, c in found if c >= keep]
            s = shares(wn, pairs)
            nums[label, subset] = (len(pairs) / len(queries), *s)
            rows.append([label, subset, f"{len(pairs) / len(queries):.2f}", *map(pct, s)])
    return rows, nums


def extrinsic(wn: WordNet, sources: dict[str, str], corpus: dict[str, list[str]]
              ) -> tuple[list[list[str]], dict, list[str]]:
    from augsvc.text import TextPipeline
    from augsvc.text.similarity import load_encoder

    encoder = load_encoder()
    sentences = sum(len(lines) for lines in corpus.values())
    rows, nums, examples = [], {}, []
    for label, source in sources.items():
        for related in RELATED:
            pipe = TextPipeline([{"name": "embedding", "aug_p": 0.3, "related": related,
                                  "context_threshold": None, "vectors": source}])
            subs, before, after = [], [], []
            t0 = time.perf_counter()
            for name, lines in corpus.items():
                for aug in pipe.batch(lines, seed=0, start=0, return_ops=True):
                    subs += [(name, aug.index, op["original"], op["substitute"]) for op in aug.ops or []
                             if op["op"] == "embedding"]
                    if aug.text != lines[aug.index]:
                        before.append(lines[aug.index])
                        after.append(aug.text)
            seconds = time.perf_counter() - t0
            sims = encoder.similarity(before, after)
            sim = statistics.fmean(sims) if sims else float("nan")
            per_sub = sum(1.0 - x for x in sims) / max(1, len(subs))  # meaning lost per substitution
            s = shares(wn, ((o, n) for _, _, o, n in subs))[:3]
            beyond = sum(o.lower() not in _RANK for _, _, o, _ in subs)
            rank = statistics.median(_RANK.get(n.lower(), len(_RANK)) for *_, n in subs) if subs else 0
            nums[label, related] = (len(subs) / sentences, *s, sim, per_sub, rank)
            rows.append([label, related, str(len(subs)), f"{len(subs) / sentences:.2f}", *map(pct, s),
                         str(len(before)), f"{sim:.4f}", f"{per_sub:.4f}", f"{rank:.0f}", str(beyond),
                         f"{seconds:.1f}"])
            examples.append(f"\n**{label}, related={related}**\n")
            for f, i, o, n in sorted(random.Random(0).sample(subs, min(EXAMPLES, len(subs)))):
                ant, syn, close, _ = relation(wn, o, n)
                tags = [t for t, on in (("antonym", ant), ("synonym", syn), ("close", close)) if on]
                note = f" [{', '.join(tags)}]" if tags else ""
                examples.append(f"- {o} → {n} ({f.removesuffix('.txt')}:{i}){note}")
    return rows, nums, examples


_PROG = ["-m", "benchmarks.counter_fitting"] if __package__ else [sys.argv[0]]
_RANK: dict[str, int] = {}  # the 50k most frequent GloVe words -> their frequency rank


# --------------------------------------------------------------------------- report

def conclusion(intr: dict, extr: dict) -> list[str]:
    p, c = "plain GloVe", "counter-fitted"
    a0, a1 = intr[p, "top-10"], intr[c, "top-10"]
    t0, t1 = intr[p, f"top-10, cos ≥ {THRESHOLD}"], intr[c, f"top-10, cos ≥ {THRESHOLD}"]
    out = [f"- Neighbours: counter-fitting {'raises' if a1[2] > a0[2] else 'does not raise'} the share "
           f"of top-10 neighbours that are WordNet synonyms ({a0[2]:.1f}% → {a1[2]:.1f}%) and "
           f"{'lowers' if a1[1] < a0[1] else 'does not lower'} the antonym share ({a0[1]:.1f}% → "
           f"{a1[1]:.1f}%); are_close neighbours {a0[3]:.1f}% → {a1[3]:.1f}%. Above the transform's "
           f"cosine {THRESHOLD}: {t0[0]:.2f} → {t1[0]:.2f} neighbours per query, antonyms "
           f"{t0[1]:.1f}% → {t1[1]:.1f}%, synonyms {t0[2]:.1f}% → {t1[2]:.1f}%."]
    verdicts = {}
    for related in RELATED:
        e0, e1 = extr[p, related], extr[c, related]
        more, costlier = e1[0] / e0[0] - 1.0, e1[5] / e0[5] - 1.0
        better, worse = more > 0.05 or costlier < -0.1, more < -0.05 or costlier > 0.1
        verdicts[related] = ("a trade-off" if better and worse else "a gain" if better
                             else "a loss" if worse else "no measurable effect")
        out.append(f"- Transform, related={related}: substitutions per sentence {e0[0]:.2f} → {e1[0]:.2f} "
                   f"({more:+.0%}); antonyms {e0[1]:.1f}% → {e1[1]:.1f}%, synonyms {e0[2]:.1f}% → "
                   f"{e1[2]:.1f}%, are_close {e0[3]:.1f}% → {e1[3]:.1f}%; sentence similarity "
                   f"{e0[4]:.4f} → {e1[4]:.4f}, similarity lost per substitution {e0[5]:.4f} → {e1[5]:.4f} "
                   f"({costlier:+.0%}); median substitute rank {e0[6]:.0f} → {e1[6]:.0f}: "
                   f"{verdicts[related]}.")
    e0, e1 = extr[p, "wordnet"], extr[c, "wordnet"]
    out.append(
        f"- The WordNet synonym shares are partly circular (the vectors were fitted to those very pairs); "
        f"the independent measure is the sentence encoder. The antonym problem counter-fitting solves is "
        f"already solved for the transform: with plain GloVe the antonym share of substitutions is "
        f"{extr[p, 'any'][1]:.1f}% (related=any) and {e0[1]:.1f}% (related=wordnet), as the antonym "
        f"filter removes them.")
    pays = verdicts["wordnet"] == "a gain"
    out.append(f"- Verdict: with the WordNet filter (the default) counter-fitting is {verdicts['wordnet']} "
               f"({e1[0] / e0[0] - 1:+.0%} substitutions, {e1[5] / e0[5] - 1:+.0%} similarity lost per "
               f"substitution); with related=any it is {verdicts['any']}. "
               + ("It pays." if pays else "It does not pay for a second vectors file and an offline fit."))
    return out


def report(path: Path, info: dict, n_queries: int, intr_rows: list,
           extr_rows: list, examples: list[str], concl: list[str], seconds: float) -> str:
    fit = f"reused the cached file (fitted {info['fitted']})" if info["cached"] else "fitted in this run"
    lines = [
        "# Counter-fitting GloVe 6B 50d to WordNet: does it pay for the embedding transform?", "",
        f"command: `{' '.join([Path(sys.executable).name, *_PROG, *sys.argv[1:]])}`  ",
        f"date: {datetime.datetime.now().isoformat(timespec='seconds')}; total runtime {seconds:.0f} s  ",
        f"CPU: {cpu_summary('1 torch thread')}  ",
        f"counter-fitted vectors: `{path}` ({fit})", "",
        "## Counter-fitting (Mrkšić et al., 2016)", "",
        f"settings: {json.dumps(SETTINGS)}  ",
        "d = 1 − cos; AR = Σ_antonyms max(0, δ − d), SA = Σ_synonyms max(0, d − γ), VSP = Σ over pairs "
        "with original d ≤ ρ of max(0, d′ − d_orig); full-batch steps, each word moved by `step` × the "
        "mean gradient of its active constraints (the reference code's update), rows renormalised.  ",
        f"constraints (both words in the 50k vocab): {info['synonym_pairs']} synonym pairs (single-word "
        f"lemmas sharing a WordNet synset), {info['antonym_pairs']} antonym pairs (`wn.antonyms`, "
        f"with the adjective clusters), {info['vsp_pairs']} VSP pairs (cos ≥ {1 - SETTINGS['rho']:.1f}, "
        f"all of them, not subsampled; antonym pairs left out)  ",
        f"time: VSP pair search {info['vsp_seconds']} s, {SETTINGS['iterations']} steps "
        f"{info['fit_seconds']} s, writing the file {info['write_seconds']} s  ",
        f"mean cosine before → after: antonym pairs {info['antonym_cos'][0]} → {info['antonym_cos'][1]} "
        f"(share at cos ≤ 0, i.e. d ≥ δ: {info['antonyms_cos_le_0'][0]:.1%} → "
        f"{info['antonyms_cos_le_0'][1]:.1%}), synonym pairs {info['synonym_cos'][0]} → "
        f"{info['synonym_cos'][1]}, VSP pairs {info['vsp_cos'][0]} → {info['vsp_cos'][1]} "
        f"({info['vsp_farther']:.1%} now farther apart than originally)", "",
        "## Neighbours of the corpus words", "",
        f"{n_queries} query words: the distinct alphabetic, lower-cased, non-stopword words of "
        f"{' and '.join(FILES)} in the 50k vocab; top-{TOP_K} neighbours among the 50k most frequent "
        "words, pooled over queries. Synonym: shares a synset with the query in some part of speech "
        "(any inflection); close: `wn.are_close(query, neighbour, pos)` for some pos; both count only "
        "neighbours of another lemma, the 'same lemma' column holds inflections of the query.", "",
        render(["vectors", "neighbours", "per query", "antonym", "synonym", "close", "same lemma"],
               intr_rows, markdown=True, left=2), "",
        "## The embedding transform on the corpus", "",
        "`TextPipeline([{\"name\": \"embedding\", \"aug_p\": 0.3, \"related\": R, \"context_threshold\": "
        "null, \"vectors\": V}])`, seed 0, index = line number (0-based) in each file, "
        f"{sum(len(v) for v in read_corpus().values())} sentences. Shares are of substitutions; "
        "similarity: mean all-MiniLM-L6-v2 cosine of changed sentences to their originals; "
        "1−sim per sub: Σ(1 − similarity) over changed sentences / substitutions (what one substitution "
        "costs); median rank: the substitutes' median GloVe frequency rank; beyond 50k: "
        "substitutions of words outside the 50k most frequent, which only the plain 400k-word GloVe "
        "can make (the counter-fitted file holds 50k words).", "",
        render(["vectors", "related", "subs", "subs/sentence", "antonym", "synonym", "close", "changed",
                "similarity", "1−sim per sub", "median rank", "beyond 50k", "seconds"], extr_rows,
               markdown=True, left=2), "",
        f"### {EXAMPLES} example substitutions per combination (random.Random(0), file:line)", *examples, "",
        "## Conclusion", "", *concl]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="also write the report here")
    ap.add_argument("--refit", action="store_true", help="counter-fit again even if cached")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from augsvc.text.vectors import load_vectors
    from augsvc.text.wordnet import load_wordnet

    t0 = time.perf_counter()
    wn = load_wordnet()
    path, info = ensure_counter_fitted(wn, args.refit)
    print(f"counter-fitted vectors: {path} ({'cached' if info['cached'] else 'fitted'}); "
          f"{info['synonym_pairs']} synonym, {info['antonym_pairs']} antonym, {info['vsp_pairs']} VSP "
          f"pairs; {info['vsp_seconds'] + info['fit_seconds']:.1f} s to fit", file=sys.stderr)
    plain = load_vectors(PLAIN)
    _RANK.update((w, i) for i, w in enumerate(plain.words[:SETTINGS["vocab"]]))
    corpus = read_corpus()
    queries = query_words(corpus, plain.row)
    sources = {"plain GloVe": PLAIN, "counter-fitted": str(path)}
    intr_rows, intr = intrinsic(wn, sources, queries)
    extr_rows, extr, examples = extrinsic(wn, sources, corpus)
    text = report(path, info, len(queries), intr_rows, extr_rows, examples,
                  conclusion(intr, extr), time.perf_counter() - t0)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
