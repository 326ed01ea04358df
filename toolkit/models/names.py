"""The names of the models the toolkit knows, without loading any of them.

Light on purpose (no Keras, no TensorFlow): commands that only name a model,
such as importing DynaSplit's files, check names here; :mod:`toolkit.models.zoo`
builds and loads the models.
"""

from __future__ import annotations

from toolkit.models.digits import DIGITS_MODELS

__all__ = ["APPLICATIONS", "GELU_NAMES", "MODEL_NAMES", "VIT_MODELS", "split_variant"]

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
