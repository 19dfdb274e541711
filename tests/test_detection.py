"""Detection and segmentation data: COCO instances and mask folders, their targets moved with the
image by the library, StreamEpoch, the torch datasets, and albumentations' own label_fields."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from augsvc.client import AugmentClient
from augsvc.client.datasets import RemoteEpochDataset
from augsvc.datasets import CocoDataset, SegmentationFolderDataset, open_dataset
from augsvc.errors import InputError
from augsvc.image.dataset import AugmentedImageDataset
from augsvc.image.pipeline import ImagePipeline
from augsvc.image.targets import Target, augment_with_targets
from augsvc.plan import EpochPlan
from tests.conftest import serving
from tests.messy_data import photo, write_coco, write_segmentation_folder

CROP = {"transforms": [{"name": "random_crop", "height": 40, "width": 40},
                       {"name": "horizontal_flip", "p": 0.5}]}


@pytest.fixture(scope="module")
def coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_coco(tmp_path_factory.mktemp("coco"))


@pytest.fixture(scope="module")
def seg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_segmentation_folder(tmp_path_factory.mktemp("seg"))


def test_coco_targets_are_what_pycocotools_reads(coco: Path) -> None:
    dataset = open_dataset(coco)
    assert isinstance(dataset, CocoDataset)
    assert dataset.info.class_names == ("cat", "dog") and dataset.category_ids == (3, 7)
    assert dataset.info.targets == ("boxes", "labels", "masks", "keypoints")
    api = COCO(str(coco))
    for index, image_id in enumerate(sorted(api.getImgIds())):
        anns = [a for a in api.loadAnns(api.getAnnIds(imgIds=image_id)) if not a["iscrowd"]]
        target = dataset.target(index)
        assert target.boxes is not None and target.labels is not None and target.mask is not None
        want = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
        assert target.boxes.tolist() == want  # COCO's x, y, w, h as pascal_voc
        assert [dataset.category_ids[k] for k in target.labels] == [a["category_id"] for a in anns]
        for k, ann in enumerate(anns):
            assert np.array_equal(target.mask[..., k], api.annToMask(ann))  # polygons and RLE
        image, label = dataset[index]
        assert label == 0 and image.shape[:2] == target.mask.shape[:2]  # type: ignore[union-attr]
    assert dataset.target(2).boxes.shape == (0, 4)  # type: ignore[union-attr]  # nothing in it
    points = dataset.target(0).keypoints  # x, y, visibility, instance; the unlabelled one left out
    assert points is not None and points.tolist() == [[12, 10, 2, 0], [38, 26, 1, 0]]
    assert dataset.target(1).keypoints.shape == (0, 4)  # type: ignore[union-attr]


def test_coco_and_segmentation_errors(tmp_path: Path, seg: Path) -> None:
    (tmp_path / "x.json").write_text('{"images": []}')
    with pytest.raises(InputError, match="not COCO instances JSON: it has no annotations, categories"):
        open_dataset(tmp_path / "x.json")
    (tmp_path / "s/images").mkdir(parents=True)
    (tmp_path / "s/masks").mkdir()
    (tmp_path / "s/images/a.png").write_bytes((seg / "masks/s0.png").read_bytes())
    with pytest.raises(InputError, match="images and masks must pair by name; unpaired: a"):
        open_dataset(tmp_path / "s")


def test_a_segmentation_folder_pairs_images_and_masks(seg: Path) -> None:
    dataset = open_dataset(seg)
    assert isinstance(dataset, SegmentationFolderDataset)
    assert dataset.info.class_names == ("0", "1", "2") and dataset.info.targets == ("mask",)
    assert open_dataset(seg, classes="sky,road,car").info.class_names == ("sky", "road", "car")
    image, _ = dataset[2]
    mask = dataset.target(2).mask
    assert mask is not None and mask.shape == image.shape[:2] == (56, 48)  # type: ignore[union-attr]
    assert sorted(np.unique(mask).tolist()) == [0, 1, 2]


def test_boxes_leave_with_their_class_and_their_mask() -> None:
    image = photo(64, 64, seed=1)
    masks = np.zeros((64, 64, 3), np.uint8)
    boxes = np.array([[2, 2, 10, 10], [30, 30, 60, 60], [5, 20, 15, 30]], np.float64)
    for k, (x0, y0, x1, y1) in enumerate(boxes.astype(int)):
        masks[y0:y1, x0:x1, k] = 1
    target = Target(boxes, np.array([4, 5, 6]), masks)
    pipeline = ImagePipeline(CROP)
    seen = set()
    for index in range(40):
        images, (out,) = augment_with_targets(pipeline, [image], [target], seed=0, indices=[index])
        alone = pipeline(image, seed=0, index=index)  # the same draws without targets
        assert np.array_equal(images[0], alone.image)
        assert out.boxes is not None and out.labels is not None and out.mask is not None
        assert out.mask.shape == (40, 40, len(out.boxes)) and len(out.labels) == len(out.boxes)
        for box, label, channel in zip(out.boxes, out.labels, np.moveaxis(out.mask, 2, 0),
                                       strict=True):
            ys, xs = np.nonzero(channel)  # each kept mask lies inside its own kept box
            assert xs.min() >= box[0] - 1 and xs.max() < box[2] + 1 and label in (4, 5, 6)
            assert ys.min() >= box[1] - 1 and ys.max() < box[3] + 1
        seen.add(len(out.boxes))
    assert len(seen) > 1  # some crops dropped boxes, so dropping was exercised


def test_albumentations_label_fields_build_and_labels_ride_along() -> None:
    compose = A.Compose([A.RandomCrop(32, 32, p=1)],
                        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["class_labels"]))
    pipeline = ImagePipeline(A.to_dict(compose))
    boxes = np.array([[0, 0, 10, 10, 7], [40, 40, 60, 60, 9]], np.float64)
    labels = {tuple(pipeline(np.zeros((64, 64, 3), np.uint8), bboxes=boxes, seed=0,
                             index=i).bboxes.reshape(-1, 5)[:, 4].tolist()) for i in range(20)}
    assert labels >= {(7.0,), (9.0,)}  # each box keeps its own label when the other is cropped away
    assert pipeline.to_spec()["transform"]["bbox_params"]["label_fields"] == ["class_labels"]


def test_the_torch_dataset_returns_torchvision_targets(coco: Path) -> None:
    dataset = open_dataset(coco)
    base = [(dataset[i][0], dataset.target(i)) for i in range(len(dataset))]
    augmented = AugmentedImageDataset(base, CROP, seed=5, epoch=2)
    image, target = augmented[0]
    images, (want,) = augment_with_targets(ImagePipeline(CROP), [base[0][0]], [base[0][1]], seed=5,
                                           indices=[augmented.global_index(0)])
    assert torch.equal(image, torch.from_numpy(images[0].transpose(2, 0, 1).copy()))
    assert set(target) == {"boxes", "labels", "masks", "keypoints"}
    assert torch.equal(target["boxes"], torch.from_numpy(want.boxes))  # type: ignore[arg-type]
    assert target["masks"].shape == (len(target["boxes"]), 40, 40)  # (N, H, W), as torchvision


@pytest.fixture(scope="module")
def address(coco: Path, seg: Path) -> Iterator[str]:
    with serving({"coco": coco, "seg": seg}, workers=1) as address:
        yield address


@pytest.mark.parametrize("name", ["coco", "seg"])
def test_stream_epoch_carries_the_librarys_targets(name: str, coco: Path, seg: Path,
                                                   address: str) -> None:
    dataset = open_dataset(coco if name == "coco" else seg)
    pipeline = ImagePipeline(CROP)
    plan = EpochPlan(len(dataset), 9, 1, 2)
    count = 0
    with AugmentClient(address) as client:
        for batch in client.stream_epoch(name, CROP, seed=9, epoch=1, batch_size=2):
            taken = dataset.take(batch.indices)
            images, targets = augment_with_targets(pipeline, taken.samples, taken.targets or [],
                                                   seed=9, indices=plan.augment_indices(batch.indices))
            assert batch.targets is not None and len(batch.targets) == len(images)
            for got_image, got, image, want in zip(batch.samples, batch.targets, images, targets,
                                                   strict=True):
                assert np.array_equal(got_image, image)
                assert got.keys() == want.as_dict().keys()
                for key, value in want.as_dict().items():
                    assert np.array_equal(got[key], value), key
                count += 1
    assert count == len(dataset)


def test_the_remote_dataset_yields_images_and_target_dicts(address: str) -> None:
    items = list(RemoteEpochDataset(address, "coco", CROP, seed=0, batch_size=3))
    assert len(items) == 1
    x, targets = items[0]
    assert x.shape == (3, 3, 40, 40) and len(targets) == 3
    assert all(t["boxes"].dtype == torch.float64 and t["labels"].dtype == torch.int64 for t in targets)
    assert all(t["masks"].shape[0] == len(t["boxes"]) for t in targets)
    assert all(t["keypoints"].shape[1] == 4 for t in targets)


def test_keypoints_that_leave_the_image_leave_with_their_columns() -> None:
    image = photo(64, 64, seed=2)
    points = np.array([[5.0, 5.0, 2.0, 0.0], [60.0, 60.0, 1.0, 1.0], [30.0, 30.0, 2.0, 1.0]])
    target = Target(np.zeros((0, 4)), np.zeros(0, np.int64), keypoints=points)
    pipeline = ImagePipeline(CROP)
    kept_counts = set()
    for index in range(120):  # a corner point survives about one crop in twelve
        _, (out,) = augment_with_targets(pipeline, [image], [target], seed=1, indices=[index])
        want = pipeline(image, keypoints=points, seed=1, index=index).keypoints
        assert out.keypoints is not None and np.array_equal(out.keypoints, want.reshape(-1, 4))
        assert set(map(tuple, out.keypoints[:, 2:].tolist())) <= {(2.0, 0.0), (1.0, 1.0), (2.0, 1.0)}
        kept_counts.add(len(out.keypoints))
    assert len(kept_counts) > 1  # some crops dropped points
