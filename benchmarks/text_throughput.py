"""Text augmentation throughput of augsvc vs nlpaug 1.1.11 (the baseline), same vectors, one core."""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a file (python benchmarks/x.py) the script's folder is on sys.path, not the repository
# root that `benchmarks.` needs (python -m puts the current folder, the root, there itself).
if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import one_thread_per_process, render, timed

# Run, not imported: one thread per process before numpy and torch load and size their thread pools.
if __name__ == "__main__":
    one_thread_per_process()

import numpy as np
import torch

from augsvc.resources import glove_6b_50d
from augsvc.text import TextPipeline

CACHE = Path.home() / ".cache" / "augsvc-bench"


def sentences(count: int) -> list[str]:
    """Real English sentences of 8-40 words from Python's bundled documentation (offline)."""
    from pydoc_data.topics import topics

    found: list[str] = []
    for key in sorted(topics):
        for part in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", topics[key])):
            if 8 <= len(part.split()) <= 40 and part[0].isupper() and "*" not in part:
                found.append(part)
    return found[:: max(1, len(found) // count)][:count]


def glove_text_file() -> Path:
    """GloVe 6B 50d as the text file nlpaug reads, written once from the packaged vectors."""
    import pyarrow.parquet as pq

    path = CACHE / "glove.6B.50d.txt"
    if not path.is_file():
        matrix, index = glove_6b_50d()
        vectors, words = np.load(matrix), pq.read_table(index).column(0).to_pylist()
        CACHE.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for word, row in zip(words, vectors, strict=True):
                handle.write(word + " " + " ".join(f"{x:.5f}" for x in row) + "\n")
    return path


def changed(before: list[str], after: list[str]) -> float:
    return sum(a != b for a, b in zip(before, after, strict=True)) / len(before)


Row = tuple[str, float, float, float, float, float, float, float]
COLUMNS = ("transform", "nlpaug load s", "nlpaug sent/s", "augsvc load s", "augsvc sent/s (one by one)",
           "augsvc sent/s (batches of 256)", "batched / nlpaug", "changed nlpaug / augsvc")


def contextual_rows(texts: list[str]) -> tuple[list[Row], list[str]]:
    """Masked-LM substitution vs a naive loop: one forward pass per masked word per sentence.

    No BERT checkpoint is reachable offline, so both sides run all-MiniLM-L6-v2's encoder
    (a real 6-layer BERT with the bert-base-uncased vocabulary) with an untrained MLM head:
    the compute is real, the predictions are not meaningful. The naive loop runs in float32,
    as such loops are written; augsvc runs with its default precision ("auto": bfloat16 on a
    CPU with native bfloat16) and pinned to float32. Returns the rows and notes on agreement.
    """
    import random

    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from augsvc.resources import minilm_folder
    from augsvc.text.mlm import choose_dtype
    from augsvc.text.ops import count_to_change
    from augsvc.text.stopwords import STOPWORDS
    from augsvc.text.tokens import words

    # MiniLM has no MLM head: transformers initialises one at random on every load. Saved once
    # with a fixed seed, every pipeline and the naive loop score with the same head.
    folder = str(Path(tempfile.mkdtemp(prefix="minilm-mlm-")))
    torch.manual_seed(0)
    AutoModelForMaskedLM.from_pretrained(str(minilm_folder())).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(minilm_folder())).save_pretrained(folder)
    start = time.perf_counter()
    tokenizer: Any = AutoTokenizer.from_pretrained(folder)
    model: Any = AutoModelForMaskedLM.from_pretrained(folder).eval()
    t_load = time.perf_counter() - start
    rows: list[Row] = []
    notes = [f"precision auto is {choose_dtype('auto', torch.device('cpu'))} on this CPU"]
    for aug_p in (0.15, 0.3):
        amount = {"aug_p": aug_p, "aug_min": 1, "aug_max": 10}
        rng = random.Random(0)

        def naive(amount: dict[str, Any] = amount, rng: random.Random = rng) -> list[str]:
            out = []
            for text in texts:
                found = [w for w in words(text) if w.is_alpha and w.text.lower() not in STOPWORDS]
                for i in rng.sample(range(len(found)), count_to_change(len(found), amount)):
                    w = found[i]
                    enc = tokenizer(text[: w.start] + tokenizer.mask_token + text[w.end:],
                                    return_tensors="pt")
                    with torch.inference_mode():
                        logits = model(**enc).logits
                    at = enc["input_ids"][0].tolist().index(tokenizer.mask_token_id)
                    best = tokenizer.convert_ids_to_tokens([int(logits[0, at].argmax())])[0]
                    text = text[: w.start] + best + text[w.end:]
                out.append(text)
            return out

        t_naive, _ = timed(naive)
        outputs = {}
        for precision in ("auto", "float32"):
            pipe = TextPipeline([{"name": "contextual", "p": 1.0, **amount, "model": folder,
                                  "batch_size": 64, "precision": precision}])
            t_first, _ = timed(lambda: [o.text for o in pipe.batch(texts[:1], seed=0)])  # noqa: B023
            t_one, _ = timed(lambda: [pipe(s, seed=0, index=i).text  # noqa: B023
                                      for i, s in enumerate(texts)])
            t_batch, out = timed(lambda: [o.text for o in pipe.batch(texts, seed=0)])  # noqa: B023
            outputs[precision] = out
            n = len(texts)
            rows.append((f"contextual aug_p {aug_p}, precision {precision} (MiniLM-L6, batch 64) "
                         "vs naive float32 loop", t_load, n / t_naive, t_first, n / t_one,
                         n / t_batch, 1.0, changed(texts, out)))
        same = sum(a == b for a, b in zip(outputs["auto"], outputs["float32"], strict=True))
        notes.append(f"aug_p {aug_p}: {same} of {len(texts)} sentences identical with precision "
                     "auto and float32")
    return rows, notes


def nlpaug_rows(small: list[str], large: list[str]
                ) -> tuple[list[Row], list[tuple[str, list[str], list[str]]]]:
    """The rows with an nlpaug baseline (embedding, random_swap) and synonym, and examples."""
    import nlpaug.augmenter.word as naw

    rows: list[Row] = []
    # Word-embedding substitution, both on GloVe 6B 50d over the full 400k vocabulary.
    load_nlpaug, aug = timed(lambda: naw.WordEmbsAug(
        model_type="glove", model_path=str(glove_text_file()), action="substitute", aug_p=0.3,
        top_k=10))
    t_base, out_base = timed(lambda: [aug.augment(s)[0] for s in small])
    spec = [{"name": "embedding", "p": 1.0, "aug_p": 0.3, "top_k": 10, "vocab_size": 400000}]
    load_ours, pipe = timed(lambda: TextPipeline(spec))
    first, _ = timed(lambda: [o.text for o in pipe.batch(small[:1], seed=0)])
    t_one, _ = timed(lambda: [pipe(s, seed=0, index=i).text for i, s in enumerate(small)])
    t_batch, out_ours = timed(lambda: [o.text for lo in range(0, len(large), 256)
                                       for o in pipe.batch(large[lo:lo + 256], seed=0, start=lo)])
    rows.append(("embedding (GloVe 50d, 400k words)", load_nlpaug, len(small) / t_base,
                 load_ours + first, len(small) / t_one, len(large) / t_batch,
                 changed(small, out_base), changed(large, out_ours)))
    examples = [("nlpaug", small, out_base), ("augsvc", large, out_ours)]
    emb_base_rate, emb_base_changed = len(small) / t_base, changed(small, out_base)

    # augsvc's default: neighbours among the 50k most frequent words (nlpaug has no such option).
    pipe = TextPipeline([{**spec[0], "vocab_size": 50000}])
    pipe.batch(small[:1], seed=0)
    t_one, _ = timed(lambda: [pipe(s, seed=0, index=i).text for i, s in enumerate(small)])
    t_batch, out_ours = timed(lambda: [o.text for lo in range(0, len(large), 256)
                                       for o in pipe.batch(large[lo:lo + 256], seed=0, start=lo)])
    rows.append(("embedding, augsvc default vocab_size 50k", load_nlpaug, emb_base_rate, 0.0,
                 len(small) / t_one, len(large) / t_batch, emb_base_changed,
                 changed(large, out_ours)))

    # EDA random swap: no data, so this row is pure per-sentence overhead.
    swap = naw.RandomWordAug(action="swap", aug_p=0.1)
    t_base, out_base = timed(lambda: [swap.augment(s)[0] for s in large])
    pipe = TextPipeline([{"name": "random_swap", "p": 1.0, "aug_p": 0.1}])
    t_one, _ = timed(lambda: [pipe(s, seed=0, index=i).text for i, s in enumerate(large)])
    t_batch, out_ours = timed(lambda: [o.text for o in pipe.batch(large, seed=0)])
    rows.append(("random_swap", 0.0, len(large) / t_base, 0.0, len(large) / t_one,
                 len(large) / t_batch, changed(large, out_base), changed(large, out_ours)))

    # Synonym: nlpaug's SynonymAug needs NLTK's downloaded tagger, so augsvc runs alone.
    load_syn, pipe = timed(lambda: TextPipeline([{"name": "synonym", "p": 1.0, "aug_p": 0.3}]))
    first, _ = timed(lambda: [o.text for o in pipe.batch(small[:1], seed=0)])
    t_one, _ = timed(lambda: [pipe(s, seed=0, index=i).text for i, s in enumerate(small)])
    t_batch, out_ours = timed(lambda: [o.text for lo in range(0, len(large), 256)
                                       for o in pipe.batch(large[lo:lo + 256], seed=0, start=lo)])
    rows.append(("synonym (WordNet; nlpaug cannot run here)", 0.0, 0.0, load_syn + first,
                 len(small) / t_one, len(large) / t_batch, 0.0, changed(large, out_ours)))
    return rows, examples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-sentences", type=int, default=300)
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--contextual-threads", type=int, default=1,
                        help="torch threads of both sides of the contextual rows (default 1)")
    parser.add_argument("--only-contextual", action="store_true",
                        help="only the contextual rows (no nlpaug needed)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        args.baseline_sentences, args.sentences = 20, 100
    small, large = sentences(args.baseline_sentences), sentences(args.sentences)
    rows: list[Row] = []
    examples: list[tuple[str, list[str], list[str]]] = []
    if not args.only_contextual:
        try:
            import nlpaug  # noqa: F401
        except ImportError:
            print("nlpaug is the baseline: pip install nlpaug==1.1.11 gensim==4.4.0 "
                  "(or run --only-contextual)", file=sys.stderr)
            return 2
        baseline_rows, examples = nlpaug_rows(small, large)
        rows += baseline_rows
    torch.set_num_threads(args.contextual_threads)
    context_rows, notes = contextual_rows(small)
    rows += context_rows
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, one thread "
          f"({args.contextual_threads} for contextual); {len(small)} sentences for nlpaug and "
          f"single calls, {len(large)} batched")

    table = []
    for name, lb, sb, lo, so, sbat, cb, co in rows:
        ours = [f"{lo:.1f}", f"{so:,.0f}", f"{sbat:,.0f}"]
        if sb == 0:  # no baseline
            table.append([name, "n/a", "n/a", *ours, "n/a", f"n/a / {co:.0%}"])
        else:
            table.append([name, f"{lb:.1f}", f"{sb:,.0f}", *ours, f"{sbat / sb:,.1f}x",
                          f"{cb:.0%} / {co:.0%}"])
    print(render(COLUMNS, table, markdown=True))
    for note in notes:
        print(f"\n{note}")
    for who, before_list, after_list in examples:
        for before, after in list(zip(before_list, after_list, strict=True))[:2]:
            print(f"\n{who} embedding:  {before}\n      -> {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
