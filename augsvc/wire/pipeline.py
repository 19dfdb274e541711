"""The Pipeline message: a spec travels as JSON, a preset by name (the server resolves it)."""

from __future__ import annotations

import json
from typing import Any

from augsvc.image.presets import IMAGE_PRESETS
from augsvc.spec import is_inline_spec, is_spec_file, load_spec
from augsvc.text.presets import TEXT_PRESETS
from augsvc.wire.v1 import augment_pb2 as pb

__all__ = ["pipeline_message"]


def pipeline_message(spec: Any) -> pb.Pipeline:
    """A spec as the wire's Pipeline message, read by the library's rule (``load_spec``).

    A dict or list, or JSON text, travels as ``spec_json`` (JSON text unchanged: the server
    checks it); YAML text and spec files are read here and sent as JSON. A name that is not one
    of augsvc's presets but names a file is that file; any other name is sent as a preset, and
    the server, which may know other presets, answers INVALID_ARGUMENT if it has none of that name.
    """
    if isinstance(spec, str) and spec.lstrip().startswith(("{", "[")):
        return pb.Pipeline(spec_json=spec)
    named = isinstance(spec, str) and not is_inline_spec(spec)
    if named and (spec in IMAGE_PRESETS or spec in TEXT_PRESETS or not is_spec_file(spec)):
        return pb.Pipeline(preset=spec)
    return pb.Pipeline(spec_json=json.dumps(load_spec(spec)))
