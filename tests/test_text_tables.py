"""Text datasets as tables: CSV and TSV with a header, JSON Lines, Parquet (augsvc.datasets.tables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from augsvc.datasets import FILE_FORMATS, TextDataset, load_text_table, open_dataset
from augsvc.errors import InputError
from augsvc.text.pipeline import TextPipeline

TEXTS = ["a fine film, all in all", 'he said "no"', "multi\nline text", "çà va 👍", "short"]
NAMES = ["pos", "neg", "pos", "neutral", "neg"]
INTS = [1, 0, 1, 3, 0]


def _csv_field(value: Any) -> str:
    text = str(value)
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def write(path: Path, texts: list[str], labels: list[Any], *, text_column: str = "text",
          label_column: str = "label") -> Path:
    """The same rows in the format of the suffix, with an extra column the loader ignores."""
    if path.suffix == ".csv":
        lines = [f"id,{label_column},{text_column}"]
        lines += [f"{i},{_csv_field(label)},{_csv_field(text)}"
                  for i, (text, label) in enumerate(zip(texts, labels, strict=True))]
        path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8", newline="")
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"id": i, text_column: text, label_column: label}) + "\n"
                                for i, (text, label) in enumerate(zip(texts, labels, strict=True))),
                        encoding="utf-8")
    elif path.suffix == ".parquet":
        pq.write_table(pa.table({"id": list(range(len(texts))), text_column: texts,
                                 label_column: labels}), path)
    else:
        raise AssertionError(path)
    return path


def samples(ds: Any) -> tuple[list[Any], list[int]]:
    texts, labels = ds.samples(range(len(ds)))
    return texts, labels.tolist()


# --------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_string_labels_round_trip(tmp_path: Path, suffix: str) -> None:
    ds = open_dataset(str(write(tmp_path / f"reviews{suffix}", TEXTS, NAMES)))
    assert isinstance(ds, TextDataset) and ds.info.kind == "text"
    assert ds.info.class_names == ("neg", "neutral", "pos")  # sorted, as for label<TAB>text lines
    assert samples(ds) == (TEXTS, [2, 0, 2, 1, 0])
    assert ds.info.description.endswith(f"reviews{suffix}: 5 texts in 3 classes")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_integer_labels_round_trip(tmp_path: Path, suffix: str) -> None:
    ds = open_dataset(str(write(tmp_path / f"reviews{suffix}", TEXTS, INTS)))
    assert ds.info.class_names == ("0", "1", "2", "3")  # "0" up to the largest, 2 unused
    assert samples(ds) == (TEXTS, INTS)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_other_column_names(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / f"sst{suffix}", TEXTS, NAMES, text_column="sentence", label_column="y")
    ds = open_dataset(str(path), text_column="sentence", label_column="y")
    assert samples(ds) == (TEXTS, [2, 0, 2, 1, 0])
    has = "the object has keys" if suffix == ".jsonl" else "the file has columns"
    with pytest.raises(InputError, match=rf"no (column|key) 'text'; {has} 'id', .*'sentence'"):
        open_dataset(str(path))


@pytest.mark.parametrize("labels", [NAMES, INTS])
def test_the_three_formats_give_equal_datasets(tmp_path: Path, labels: list[Any]) -> None:
    found = [open_dataset(str(write(tmp_path / f"data{suffix}", TEXTS, labels)))
             for suffix in (".csv", ".jsonl", ".parquet")]
    first = found[0]
    for ds in found[1:]:
        assert samples(ds) == samples(first)
        assert ds.info.class_names == first.info.class_names and len(ds) == len(first) == 5


def test_load_text_table_directly(tmp_path: Path) -> None:
    ds = load_text_table(write(tmp_path / "d.jsonl", TEXTS, NAMES))
    assert ds.texts == tuple(TEXTS) and ds.info.name == str(tmp_path / "d.jsonl")


def test_a_text_pipeline_over_the_samples(tmp_path: Path) -> None:
    texts = ["the quick brown fox jumps over the lazy dog", "a good film with a great cast and crew"]
    ds = open_dataset(str(write(tmp_path / "d.csv", texts, ["a", "b"])))
    batch, labels = ds.samples([0, 1])
    out = TextPipeline("eda").batch(batch, seed=0)  # type: ignore[arg-type]
    assert [o.index for o in out] == [0, 1] and all(isinstance(o.text, str) and o.text for o in out)
    assert out == TextPipeline("eda").batch(batch, seed=0)  # type: ignore[arg-type]
    assert labels.tolist() == [0, 1]


# --------------------------------------------------------------------------- CSV details

def test_csv_quoting_embedded_newlines_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    content = ('\ufefftext,label\r\n'
               '"one, two",a\r\n'
               '"she said ""hi""",b\r\n'
               '\r\n'
               '"first line\nsecond line",  a  \r\n'
               'plain,b')
    path.write_bytes(content.encode("utf-8"))
    ds = open_dataset(str(path))
    assert samples(ds) == (["one, two", 'she said "hi"', "first line\nsecond line", "plain"], [0, 1, 0, 1])
    assert ds.info.class_names == ("a", "b")  # labels lose surrounding spaces


def test_csv_row_numbers_are_lines_after_multi_line_rows(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text('text,label\n"a\nb\nc",x\n   ,y\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"n\.csv, line 5: empty text"):
        open_dataset(str(path))


@pytest.mark.parametrize(("content", "match"), [
    (b"text,label\nok,a\n,b\n", r"line 3: empty text"),
    (b"text,label\nok,a\nfine,\n", r"line 3: empty label"),
    (b"text,label\nok,a\ntoo,many,fields\n", r"line 3: 3 fields, the header has 2"),
    (b"text,label\nok,a\n\"open quote,b\n", r"line 3: bad CSV \(unexpected end of data\)"),
    (b"text,label\nok,a\nbad \xff,b\n", r"line 3: not valid UTF-8 \(invalid start byte at byte 4\)"),
    (b"text,label\nok,1\nbig," + b"9" * 5000 + b"\n",
     r"line 3: integer label 99999999999999999\.\.\. is not in 0\.\.999999"),
    (b"text,label\n\n", r"has no rows"),
    (b"", r"is empty; expected a header row"),
    (b"review,stars\nok,1\n", r"no column 'text'; the file has columns 'review', 'stars'"),
    (b"text,text,label\na,b,c\n", r"names the column 'text' 2 times"),
])
def test_csv_errors(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match) as info:
        open_dataset(str(path))
    assert str(path) in str(info.value)


def test_digit_labels_are_integers_only_when_all_are(tmp_path: Path) -> None:
    path = tmp_path / "stars.csv"
    path.write_text("text,label\na,1\nb,10\nc,2\n", encoding="utf-8")
    assert open_dataset(str(path)).info.class_names == tuple(str(i) for i in range(11))
    path.write_text("text,label\na,-1\nb,0\nc,1\n", encoding="utf-8")
    ds = open_dataset(str(path))
    assert ds.info.class_names == ("-1", "0", "1") and samples(ds)[1] == [0, 1, 2]


# --------------------------------------------------------------------------- TSV

def test_tsv_with_a_header_only_when_a_column_option_is_given(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text('sentence\tlabel\nit is "great", really\t1\nnot good\t0\n', encoding="utf-8")
    ds = open_dataset(str(path), text_column="sentence")
    assert samples(ds) == (['it is "great", really', "not good"], [1, 0])  # no quoting in TSV
    assert ds.info.class_names == ("0", "1")
    lines = open_dataset(str(path))  # without options: label<TAB>text lines, the header a row
    assert samples(lines)[0] == ["label", '1', '0'] and lines.info.description.startswith("text lines")
    with pytest.raises(InputError, match=r"train\.tsv, line 3: 3 fields, the header has 2"):
        path.write_text("sentence\tlabel\nok\t1\nx\ty\tz\n", encoding="utf-8")
        open_dataset(str(path), text_column="sentence")


# --------------------------------------------------------------------------- JSON Lines

@pytest.mark.parametrize(("content", "match"), [
    (b'{"text": "a", "label": "x"}\n\n  \n{"text": "b", "label": \n', r"line 4: not valid JSON"),
    (b'{"text": "a", "label": "x"}\n[1, 2]\n', r"line 2: not a JSON object \(a list\)"),
    (b'{"text": "a", "label": "x"}\n{"text": "  ", "label": "y"}\n', r"line 2: empty text"),
    (b'{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n', r"line 2: missing label"),
    (b'{"text": "a", "label": "x"}\n{"text": "b"}\n',
     r"line 2: no key 'label'; the object has keys 'text'"),
    (b'{"text": "a", "label": 1.5}\n', r"line 1: a label must be a string or an integer, got float 1.5"),
    (b'{"text": "a", "label": true}\n', r"line 1: a label must be a string or an integer, got bool"),
    (b'{"text": "a", "label": -1}\n', r"line 1: integer label -1 is not in 0\.\.999999"),
    (b'{"text": "a", "label": ' + b"9" * 5000 + b'}\n', r"line 1: not valid JSON \(Exceeds the limit"),
    (b'{"text": 3, "label": 1}\n', r"line 1: a text must be a string, got int 3"),
    (b'{"text": "a", "label": 1}\n{"text": "b", "label": "x"}\n',
     r"labels mix integers \(line 1: 1\) and strings \(line 2: 'x'\)"),
    (b"\n\n", r"has no rows"),
])
def test_jsonl_errors(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match) as info:
        open_dataset(str(path))
    assert str(path) in str(info.value)


def test_jsonl_skips_blank_lines_and_allows_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes('\ufeff{"text": "a", "label": "x"}\r\n\n{"label": "y", "text": "b"}'.encode())
    assert samples(open_dataset(str(path))) == (["a", "b"], [0, 1])


# --------------------------------------------------------------------------- Parquet

def test_parquet_errors_name_the_row_index(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"text": ["a", None, "c"], "label": ["x", "y", "z"]}), path)
    with pytest.raises(InputError, match=r"p\.parquet, row index 1: empty text"):
        open_dataset(str(path))
    pq.write_table(pa.table({"text": ["a", "b"], "label": pa.array([0, None], pa.int64())}), path)
    with pytest.raises(InputError, match=r"row index 1: missing label"):
        open_dataset(str(path))
    pq.write_table(pa.table({"text": ["a", "b"], "label": [0.5, 1.0]}), path)
    with pytest.raises(InputError, match=r"column 'label' holds double; expected strings or integers"):
        open_dataset(str(path))
    pq.write_table(pa.table({"body": ["a"], "label": [0]}), path)
    with pytest.raises(InputError, match=r"no column 'text'; the file has columns 'body', 'label'"):
        open_dataset(str(path))


def test_parquet_dictionary_and_large_strings(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    table = pa.table({"text": pa.array(["a", "b", "c"], pa.large_string()),
                      "label": pa.array(["y", "x", "y"]).dictionary_encode()})
    pq.write_table(table, path)
    ds = open_dataset(str(path))
    assert samples(ds) == (["a", "b", "c"], [1, 0, 1]) and ds.info.class_names == ("x", "y")


def test_not_a_parquet_file(tmp_path: Path) -> None:
    (tmp_path / "junk.parquet").write_bytes(b"hello")
    with pytest.raises(InputError, match=r"cannot read .*junk\.parquet as Parquet"):
        open_dataset(str(tmp_path / "junk.parquet"))


# --------------------------------------------------------------------------- options

def test_options_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", TEXTS, NAMES)
    with pytest.raises(InputError, match=r"unknown option\(s\) \['channels'\]; allowed: text_column, "
                                         r"label_column"):
        open_dataset(str(path), channels="rgb")
    (tmp_path / "d.txt").write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"unknown option\(s\) \['text_column'\]; allowed: none"):
        open_dataset(str(tmp_path / "d.txt"), text_column="x")  # .txt is label<TAB>text lines only
    with pytest.raises(InputError, match=r"text_column and label_column are both 'label'"):
        open_dataset(str(path), text_column="label")
    with pytest.raises(InputError, match=r"text_column must be a column name, got 3"):
        open_dataset(str(path), text_column=3)
    for suffix in (".csv", ".jsonl", ".parquet", ".tsv"):
        assert FILE_FORMATS[suffix].options == ("text_column", "label_column")
