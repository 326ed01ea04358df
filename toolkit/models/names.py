"""The names of the models the toolkit knows, without loading any of them.

Light on purpose (no Keras, no TensorFlow): commands that only name a model,
such as importing DynaSplit's files, check names here; :mod:`toolkit.models.zoo`
builds and loads the models.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from toolkit.errors import ToolkitError, choices
from toolkit.models.digits import DIGITS_MODELS

__all__ = ["APPLICATIONS", "GELU_NAMES", "MODEL_NAMES", "VIT_MODELS", "check_input_size",
           "check_model_name", "split_variant"]

#: ``keras.applications`` architectures: toolkit name -> class name
APPLICATIONS: dict[str, str] = {
    "vgg16": "VGG16",
    "resnet50": "ResNet50",
    "mobilenetv2": "MobileNetV2",
}
#: vision transformers, whose GELU variant is part of the name (``vit-b16:igelu``)
VIT_MODELS: tuple[str, ...] = ("vit-b16",)
#: their GELU variants; ``exact`` is the plain name, the others a suffix
GELU_NAMES: tuple[str, ...] = ("exact", "tanh", "igelu")
#: every model name the zoo builds (besides paths to ``.keras`` files)
MODEL_NAMES: tuple[str, ...] = (*DIGITS_MODELS, *APPLICATIONS, *VIT_MODELS)


def split_variant(name: str) -> tuple[str, str | None]:
    """``"vit-b16:igelu"`` -> ``("vit-b16", "igelu")``; other names unchanged."""
    base, sep, variant = name.partition(":")
    if sep and base in VIT_MODELS and not name.endswith(".keras"):
        return base, variant
    return name, None


def check_model_name(name: str | os.PathLike) -> str:
    """``name`` as a string where it names a model of the zoo (a GELU variant
    included) or a ``.keras`` file; nothing is loaded.

    Raises:
        ToolkitError: anything else, listing the zoo's names.
    """
    text = str(name) if isinstance(name, str | os.PathLike) else None
    if text is not None and (split_variant(text)[0] in MODEL_NAMES or text.endswith(".keras")):
        return text
    raise ToolkitError(
        f"unknown model {name!r}; valid: {choices(MODEL_NAMES)}, or a path to a .keras file")


def check_input_size(names: Sequence[str], input_size: int | None,
                     also: Sequence[str] = ()) -> None:
    """Refuse an input size that none of ``names`` can take.

    Only the ``keras.applications`` models and ``vit-b16`` (and the models of
    ``also``, e.g. partitioning's stacks) are built for an input size; the
    digits models and ``.keras`` files have a fixed input, which an input size
    would silently leave as it is.

    Raises:
        ToolkitError: ``input_size`` is given and no model of ``names`` takes one.
    """
    sized = (*APPLICATIONS, *VIT_MODELS, *also)
    if input_size is None or any(split_variant(str(n))[0] in sized for n in names):
        return
    raise ToolkitError(f"--input-size applies to {choices(sized)} only; "
                       f"{', '.join(map(str, names))} has a fixed input")
