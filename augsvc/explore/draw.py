"""Images for the page: scaled down to show, with their boxes, masks and keypoints drawn on, as
PNG data URLs."""

from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np

from augsvc.errors import InputError
from augsvc.image.gallery import to_rgb

__all__ = ["PALETTE", "box_corners", "data_url", "render"]

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40),
)
"""RGB colours by class (or instance) number, in turn."""

_MASK_ALPHA = 0.45


def box_corners(boxes: np.ndarray, bbox_format: str, height: int, width: int) -> np.ndarray:
    """(N, 4) ``x_min, y_min, x_max, y_max`` pixels of boxes in ``bbox_format`` (albumentations'
    names: pascal_voc and coco in pixels, yolo and albumentations normalised to [0, 1])."""
    b = np.asarray(boxes, np.float64)[:, :4]
    if bbox_format == "pascal_voc":
        return b.copy()
    if bbox_format == "coco":
        return np.column_stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]])
    scale = np.array([width, height, width, height], np.float64)
    if bbox_format == "albumentations":
        return b * scale
    if bbox_format == "yolo":
        cx, cy, w, h = b.T
        return np.column_stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * scale
    raise InputError(f"unknown bbox_format {bbox_format!r}")


def _colour(k: int) -> tuple[int, int, int]:
    return PALETTE[k % len(PALETTE)]


def _labels(mask: np.ndarray) -> np.ndarray:
    """An HxW map of what each pixel shows: a class map as it is, HxWxK instance masks as the
    number (1..K) of the last instance covering it."""
    if mask.ndim == 2:
        return mask.astype(np.int64)
    out = np.zeros(mask.shape[:2], np.int64)
    for k in range(mask.shape[2]):
        out[mask[..., k] > 0] = k + 1
    return out


def _overlay_mask(canvas: np.ndarray, mask: np.ndarray) -> None:
    labels = cv2.resize(_labels(mask).astype(np.int32), (canvas.shape[1], canvas.shape[0]),
                        interpolation=cv2.INTER_NEAREST)
    for value in np.unique(labels):
        if value == 0:
            continue
        inside = labels == value
        colour = np.array(_colour(int(value) - 1), np.float32)
        canvas[inside] = (canvas[inside] * (1 - _MASK_ALPHA) + colour * _MASK_ALPHA).astype(np.uint8)
        contours, _ = cv2.findContours(inside.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, _colour(int(value) - 1), 1, cv2.LINE_AA)


def _draw_boxes(canvas: np.ndarray, boxes: np.ndarray, bbox_format: str, shape: tuple[int, int],
                scale: float) -> None:
    corners = box_corners(boxes, bbox_format, *shape) * scale
    for k, (x0, y0, x1, y1) in enumerate(corners):
        label = int(boxes[k, 4]) if boxes.shape[1] > 4 and np.isfinite(boxes[k, 4]) else k
        colour = _colour(label)
        p0, p1 = (round(x0), round(y0)), (round(x1), round(y1))
        cv2.rectangle(canvas, p0, p1, colour, 2, cv2.LINE_AA)
        text = str(label)
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        top = max(p0[1], th + 4)
        cv2.rectangle(canvas, (p0[0], top - th - 4), (p0[0] + tw + 4, top), colour, -1)
        cv2.putText(canvas, text, (p0[0] + 2, top - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)


def _draw_keypoints(canvas: np.ndarray, keypoints: np.ndarray, keypoint_format: str,
                    scale: float) -> None:
    points = np.asarray(keypoints, np.float64).reshape(len(keypoints), -1)
    xy = points[:, [1, 0]] if keypoint_format == "yx" else points[:, :2]
    for k, (x, y) in enumerate(xy * scale):
        centre = (round(x), round(y))
        cv2.circle(canvas, centre, 5, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(canvas, centre, 3, _colour(k), -1, cv2.LINE_AA)


def render(image: np.ndarray, *, mask: np.ndarray | None = None, bboxes: Any = None,
           keypoints: Any = None, bbox_format: str = "pascal_voc", keypoint_format: str = "xy",
           max_side: int = 512) -> np.ndarray:
    """``image`` as RGB uint8 at most ``max_side`` pixels on its long side (never enlarged), with
    the mask shaded in, boxes outlined with their label (the fifth column, else their number)
    and keypoints as dots. The targets are in the image's own pixels, as the pipeline gives them.
    """
    rgb = to_rgb(image)
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        canvas = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    else:
        canvas = rgb.copy()  # drawn on: never the caller's image
    if mask is not None and np.asarray(mask).size:
        _overlay_mask(canvas, np.asarray(mask))
    if bboxes is not None and len(bboxes):
        _draw_boxes(canvas, np.asarray(bboxes, np.float64).reshape(len(bboxes), -1), bbox_format,
                    (height, width), scale)
    if keypoints is not None and len(keypoints):
        _draw_keypoints(canvas, np.asarray(keypoints, np.float64), keypoint_format, scale)
    return canvas


def data_url(rgb: np.ndarray) -> str:
    """An RGB uint8 image as a ``data:image/png;base64,...`` URL."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"cannot encode an image of shape {rgb.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")
