"""What a request classifies: a named sample, an inline array or image, or a raw tensor.

A request's ``input`` is one of:

- an integer ≥ 0: the evaluation sample with that index (tests and demos);
- a path ending in ``.npy`` (dry run only, as before);
- ``{"npy": BASE64}``: a ``.npy`` file's bytes, base64-encoded: a float array
  that already is the model's input, shaped like it (with or without the batch
  dimension of 1);
- ``{"image": BASE64}``: a PNG or JPEG file's bytes, base64-encoded; the
  model's preprocessing (:class:`Preprocessor`) turns it into the model's input.

On TCP the input can also travel as a raw tensor in the runtime's binary
framing (:mod:`toolkit.runtime.framing`), see :func:`request_from_frame`.

Limits (:mod:`toolkit.scheduler.limits`): an inline input is bounded by the request line limit
(:data:`toolkit.scheduler.protocol.MAX_LINE_BYTES`); a framed tensor by
:data:`MAX_TENSOR_BYTES`; an image by :data:`MAX_IMAGE_PIXELS` (checked from its
header before it is decoded, so a decompression bomb is refused cheaply); an
array by :data:`MAX_NDIM` dimensions. Object arrays (pickles) are never loaded.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolkit.errors import ToolkitError
from toolkit.scheduler.limits import MAX_IMAGE_PIXELS, MAX_NDIM, MAX_TENSOR_BYTES, MAX_TOP_K

__all__ = ["IMAGE_FORMATS", "MAX_IMAGE_PIXELS", "MAX_NDIM", "MAX_TENSOR_BYTES",
           "MAX_TOP_K", "InlineInput", "InputError", "Preprocessor", "decode_image",
           "decode_npy", "parse_inline"]

#: image formats accepted inline
IMAGE_FORMATS = ("PNG", "JPEG")


class InputError(ToolkitError):
    """An input that cannot be decoded, or does not fit the model; the message says why."""


@dataclass(frozen=True)
class InlineInput:
    """An input carried by the request itself.

    Attributes:
        kind: ``npy`` (a model-ready array), ``image`` (pixels to preprocess:
            height × width × channels, uint8) or ``tensor`` (a framed raw tensor,
            model-ready like ``npy``).
        array: the decoded array.
    """

    kind: str
    array: np.ndarray

    @property
    def nbytes(self) -> int:
        """Decoded size in bytes."""
        return int(self.array.nbytes)


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise InputError(f"'input.{what}' must be a non-empty base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"'input.{what}' is not valid base64") from None


def parse_inline(raw: dict[str, Any]) -> InlineInput:
    """Decode ``{"npy": BASE64}`` or ``{"image": BASE64}``.

    Raises:
        InputError: another key, bad base64, or content that is not a valid
            ``.npy`` array / PNG or JPEG image within the limits.
    """
    if len(raw) != 1 or next(iter(raw)) not in ("npy", "image"):
        raise InputError(f"an inline 'input' is {{\"npy\": BASE64}} or {{\"image\": BASE64}}, "
                         f"got keys {sorted(raw)}")
    (kind, text), = raw.items()
    data = _b64(text, kind)
    decode = decode_npy if kind == "npy" else decode_image
    try:
        return InlineInput(kind, decode(data))
    except InputError:
        raise
    except Exception as exc:  # whatever a decoder meets is the input's fault
        raise InputError(f"'input.{kind}' cannot be decoded ({type(exc).__name__})") from None


def decode_npy(data: bytes) -> np.ndarray:
    """A numeric array from ``.npy`` bytes (no pickles, header checked first).

    Raises:
        InputError: not a ``.npy`` file, an object or non-numeric dtype, too
            many dimensions, or a size that does not match the data.
    """
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}[version]
        shape, fortran, dtype = read_header(stream)
    except (ValueError, SyntaxError, TypeError, OverflowError, KeyError):
        raise InputError("'input.npy' is not a .npy file (bad magic or header)") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise InputError(f"'input.npy' has dtype {dtype}; valid: a numeric (float, int, "
                         "bool) array")
    if len(shape) > MAX_NDIM:
        raise InputError(f"'input.npy' has {len(shape)} dimensions; at most {MAX_NDIM}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    body = data[stream.tell():]
    if count * dtype.itemsize != len(body):
        raise InputError(f"'input.npy' declares shape {shape} ({count * dtype.itemsize} "
                         f"bytes of {dtype}) but carries {len(body)} bytes")
    array = np.frombuffer(body, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def decode_image(data: bytes) -> np.ndarray:
    """Pixels (height × width × channels, uint8) of a PNG or JPEG image.

    Raises:
        InputError: not a PNG/JPEG, larger than :data:`MAX_IMAGE_PIXELS`, or corrupt.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError:
        raise InputError(f"'input.image' has more than {MAX_IMAGE_PIXELS} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise InputError(f"'input.image' is not an image; valid formats: "
                         f"{', '.join(IMAGE_FORMATS)}") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS or not width or not height:
        raise InputError(f"'input.image' is {width}x{height} pixels; at most "
                         f"{MAX_IMAGE_PIXELS} pixels")
    try:
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            if image.mode == "RGBA":
                image = image.convert("RGB")
        pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError):
        raise InputError(f"'input.image' is a corrupt {image.format} image") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


class Preprocessor:
    """The model's own preprocessing, from an inline input to a batch of one.

    Images are made grey or RGB as the model's channels ask, resized to its
    input size (bilinear) and scaled to [0, 1] — the preprocessing that made the
    model's evaluation inputs (:func:`toolkit.models.data.eval_inputs`: the
    digits scaled to [0, 1], resized for larger models). Arrays (``npy``,
    ``tensor``) are model-ready: their shape must be the model's input shape
    (with or without a leading batch dimension of 1) and their values finite.

    Args:
        input_shape: the model's input shape without the batch dimension (H, W, C).
    """

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        self.input_shape = tuple(int(d) for d in input_shape)

    @classmethod
    def for_model(cls, model: Any) -> Preprocessor:
        """The preprocessor of a Keras model (from its first input's shape)."""
        return cls(tuple(model.inputs[0].shape[1:]))

    def __call__(self, inline: InlineInput) -> np.ndarray:
        """The model input, shaped (1, *input_shape), float32.

        Raises:
            InputError: the shape or dtype does not fit the model.
        """
        if inline.kind == "image":
            return self._image(inline.array)[None]
        x = inline.array
        if x.dtype.kind != "f":
            raise InputError(f"an input array must be floating point (float16/32/64) and "
                             f"already preprocessed for the model; got {x.dtype} (send pixels "
                             "as 'image' to have them preprocessed)")
        if x.shape == self.input_shape:
            x = x[None]
        if x.shape != (1, *self.input_shape):
            raise InputError(f"input shape {tuple(x.shape)} does not fit the model's input "
                             f"{self.input_shape} (or {(1, *self.input_shape)})")
        x = x.astype(np.float32)
        if not np.isfinite(x).all():
            raise InputError("input array holds NaN or infinite values")
        return x

    def _image(self, pixels: np.ndarray) -> np.ndarray:
        from PIL import Image

        if len(self.input_shape) != 3 or self.input_shape[-1] not in (1, 3):
            raise InputError(f"this model's input {self.input_shape} is not an image "
                             "(height, width, 1 or 3 channels); send an 'npy' array")
        height, width, channels = self.input_shape
        image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        image = image.convert("L" if channels == 1 else "RGB")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        x = np.asarray(image, dtype=np.float32) / 255.0
        return x[..., None] if channels == 1 else x

