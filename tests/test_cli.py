"""The augsvc command line, run in-process through ``main``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from augsvc.cli import main
from augsvc.image import list_image_transforms
from augsvc.image.io import read_image, write_image
from tests.conftest import structured_image


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    write_image(folder / "a.png", structured_image(64, 80, seed=1))
    write_image(folder / "sub" / "b.jpg", structured_image(50, 60, seed=2))
    write_image(folder / "c.png", structured_image(40, 40, channels=4, seed=3))
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    return folder


SPEC = "transforms:\n  - {name: rotate, p: 1, limit: 30}\n  - {name: gamma, p: 0.5}\n"


def test_augment_keeps_names_reports_bad_files_and_goes_on(photos, tmp_path, capsys) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)
    out = tmp_path / "out"
    code = main(["augment", "--spec", str(tmp_path / "spec.yaml"), "--seed", "0",
                 "--params", str(tmp_path / "meta" / "params.jsonl"), str(photos), str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "wrote 3 images" in err and "1 files failed" in err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "c.png", "sub/b.jpg"]
    assert read_image(out / "c.png").shape == (40, 40, 4)
    lines = [json.loads(x) for x in (tmp_path / "meta" / "params.jsonl").read_text().splitlines()]
    assert [x["file"] for x in lines] == ["a.png", "c.png", "sub/b.jpg"]
    assert all(x["params"][0]["name"] == "rotate" for x in lines)


def test_augment_is_reproducible_and_copies_get_suffixes(photos, tmp_path) -> None:
    for run in ("r1", "r2"):
        main(["augment", "--seed", "3", "-n", "2", str(photos), str(tmp_path / run)])
    first = sorted((tmp_path / "r1").rglob("*.png"))
    assert [p.name for p in first] == ["a_0.png", "a_1.png", "c_0.png", "c_1.png"]
    for path in first:
        twin = tmp_path / "r2" / path.relative_to(tmp_path / "r1")
        assert path.read_bytes() == twin.read_bytes()
    assert not np.array_equal(read_image(first[0]), read_image(first[1]))


def test_augment_bad_spec_is_a_clear_error(photos, tmp_path, capsys) -> None:
    (tmp_path / "bad.yaml").write_text("transforms:\n  - {name: rotat}\n")
    assert main(["augment", "--spec", str(tmp_path / "bad.yaml"), str(photos),
                 str(tmp_path / "o")]) == 2
    assert "did you mean 'rotate'" in capsys.readouterr().err
    assert main(["augment", str(tmp_path / "missing"), str(tmp_path / "o")]) == 2


def test_gallery_writes_a_grid_with_a_row_per_transform(photos, tmp_path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)
    out = tmp_path / "g.png"
    assert main(["gallery", "--spec", str(tmp_path / "spec.yaml"), "--images", str(photos),
                 "--max-images", "2", "-n", "3", "--cell", "64", "-o", str(out)]) == 0
    grid = read_image(out)
    rows = 2 + 2  # two transforms, then the full pipeline on each of the two images
    assert grid.shape == (28 + rows * 70 + 6, 200 + 4 * 70 + 6, 3)
    first_original = grid[28:28 + 64, 206:206 + 64]
    first_sample = grid[28:28 + 64, 276:276 + 64]
    assert not np.array_equal(first_original, first_sample)


def test_gallery_recurses_into_class_folders_like_augment(tmp_path, monkeypatch, capsys) -> None:
    import augsvc.image.gallery

    folder = tmp_path / "classes"  # no image at the top: every image is in a class folder
    write_image(folder / "dog" / "b.png", structured_image(40, 48, seed=2))
    write_image(folder / "cat" / "a.png", structured_image(48, 40, seed=1))
    write_image(folder / "cat" / "kitten" / "c.jpg", structured_image(32, 32, seed=3))
    (folder / "cat" / "broken.png").write_bytes(b"not a png")
    (folder / "dog" / "notes.txt").write_text("ignored: not an image suffix")
    real, labels = augsvc.image.gallery.make_gallery, []

    def spy(images, *args, **kwargs):
        labels.extend(name for name, _ in images)
        return real(images, *args, **kwargs)

    monkeypatch.setattr(augsvc.image.gallery, "make_gallery", spy)
    out = tmp_path / "g.png"
    assert main(["gallery", "--spec", '{"transforms": [{"name": "rotate", "p": 1}]}',
                 "--images", str(folder), "--max-images", "3", "-n", "1", "--cell", "32",
                 "-o", str(out)]) == 0
    assert "skipped" in (err := capsys.readouterr().err) and "broken.png" in err
    # sorted like augment's files; the broken file does not take one of the three places
    assert labels == ["cat/a.png", "cat/kitten/c.jpg", "dog/b.png"]
    assert read_image(out).shape[0] == 28 + (1 + 3) * 38 + 6  # one transform row + 3 images
    assert main(["gallery", "--images", str(folder / "dog" / "notes.txt")]) == 2
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert main(["gallery", "--images", str(tmp_path / "empty")]) == 2
    assert "no images (" in capsys.readouterr().err


def test_samples_and_transform_listing(tmp_path, capsys) -> None:
    assert main(["samples", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "astronaut.png").is_file()
    assert main(["transforms", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listed] == list_image_transforms()
    assert main(["transforms", "text", "--json"]) == 0
    names = [t["name"] for t in json.loads(capsys.readouterr().out)]
    assert "synonym" in names and "semantic_filter" in names and "rotate" not in names


def test_text_streams_json_lines_reproducibly(tmp_path, monkeypatch, capsys) -> None:
    import io

    (tmp_path / "text.yaml").write_text("transforms:\n  - {name: random_swap, p: 1}\n")
    lines = "the quick brown fox\n\nUnicode naïve café stays\nlast line here\n"

    def run(batch_size: str) -> list[dict]:
        monkeypatch.setattr("sys.stdin", io.StringIO(lines))
        assert main(["text", "--spec", str(tmp_path / "text.yaml"), "--seed", "0", "-n", "2",
                     "--ops", "--batch-size", batch_size]) == 0
        return [json.loads(x) for x in capsys.readouterr().out.splitlines()]

    first, second = run("64"), run("1")
    assert first == second
    assert [(r["index"], r["variant"]) for r in first] == [(i, v) for i in range(4) for v in (0, 1)]
    assert first[2]["text"] == "" and first[2]["ops"] == []
    assert sorted(first[0]["text"].split()) == sorted(["the", "quick", "brown", "fox"])


def test_a_spec_is_a_preset_name_json_text_or_a_file_for_every_command(tmp_path, monkeypatch,
                                                                        capsys) -> None:
    import io

    from augsvc.text.pipeline import TextPipeline
    from augsvc.text.presets import TEXT_PRESETS

    monkeypatch.chdir(tmp_path)
    (tmp_path / "eda.json").write_text('{"transforms": [{"name": "random_swap", "p": 1}]}')

    def run(spec: str) -> tuple[int, list[str], str]:
        monkeypatch.setattr("sys.stdin", io.StringIO("the quick brown fox jumps\n"))
        status = main(["text", "--spec", spec, "--seed", "3"])
        captured = capsys.readouterr()
        return status, [json.loads(x)["text"] for x in captured.out.splitlines()], captured.err

    want = [r.text for r in TextPipeline(TEXT_PRESETS["eda"]).batch(
        ["the quick brown fox jumps"], seed=3)]
    assert run("eda") == (0, want, "")  # the preset, not the eda.json file beside it
    status, texts, _ = run('{"transforms": [{"name": "random_swap", "p": 1}]}')
    assert status == 0 and sorted(texts[0].split()) == sorted(["the", "quick", "brown", "fox", "jumps"])
    assert run("eda.json")[:2] == (status, texts)  # the file holds the same spec
    status, texts, err = run("edaa")
    assert status == 2 and texts == []
    assert "spec file not found: edaa; nor is it a preset (eda, embedding, synonym" in err


def test_text_answers_each_line_as_it_arrives_and_drops_crlf(tmp_path) -> None:
    import subprocess
    import sys
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "augsvc.cli", "text", "--spec", "eda", "--seed",
                             "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    proc.stdin.write("the quick brown fox jumps\r\n")
    proc.stdin.flush()  # and no more input yet: the answer must not wait for a batch to fill
    reader.join(timeout=120)
    try:
        assert got and json.loads(got[0])["index"] == 0
        assert "\r" not in json.loads(got[0])["text"]  # CRLF input: the CR is not part of the text
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0
