"""Evaluation data for a model: inputs, calibration samples and reference labels.

The shipped digits models (``digits-cnn`` on 8x8, ``digits-vgg`` on the digits
upsampled to 64x64) are evaluated against the true labels of the held-out digits.
The ``keras.applications`` architectures have no trained weights here (nothing
can be downloaded) and no dataset of their own, so they are fed the real digits
images resized to their input size, and their "accuracy" is the top-1
*agreement with the unsplit fp32 model* (``label_source = "fp32-model"``): the
figure that shows what int8 heads and lossy codecs cost. Every accuracy the
toolkit reports carries its ``label_source``.

Real data: :func:`folder_data` reads a folder of images with one subfolder per
class (like DynaSplit's 1 000-image ImageNet validation subset) through
``keras.utils.image_dataset_from_directory`` and the model's own preprocessing
(:data:`PREPROCESSING`); accuracy is then against the real labels
(``label_source = "labels"``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import ToolkitError, check_count, first_line
from toolkit.fileio import as_path
from toolkit.models.digits import load_digits_data

__all__ = ["IMAGE_FORMATS", "PREPROCESSING", "EvalData", "eval_data", "eval_inputs",
           "folder_data", "image_files", "reference_labels"]

#: the file endings ``keras.utils.image_dataset_from_directory`` reads (any case)
IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")

#: model name -> how its images (float pixels 0..255) are preprocessed:
#: ``scale:<divisor>``, ``vit`` (to -1..1, as vit_keras) or a keras.applications
#: module whose ``preprocess_input`` is used; other models scale by 1/255
PREPROCESSING: dict[str, str] = {
    "digits-cnn": "scale:255",
    "vgg16": "vgg16",
    "resnet50": "resnet50",
    "mobilenetv2": "mobilenet_v2",
    "vit-b16": "vit",
}


@dataclass(frozen=True)
class EvalData:
    """Inputs and labels to run and score a model.

    Attributes:
        x_calib: representative inputs for int8 calibration (training split).
        x_eval: held-out inputs streamed by split inference.
        y_eval: reference labels of ``x_eval``.
        label_source: ``labels`` (true labels) or ``fp32-model`` (agreement).
    """

    x_calib: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    label_source: str

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` evaluation samples (cycling when n exceeds them)."""
        idx = np.arange(n) % len(self.x_eval)
        return self.x_eval[idx], self.y_eval[idx]


def _resize(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    import tensorflow as tf

    h, w, c = shape
    out = tf.image.resize(x, (h, w), method="bilinear").numpy()
    if c != out.shape[-1]:
        out = np.repeat(out, c, axis=-1)
    return out.astype("float32")


#: Keras names of the models trained on the digits (scored against true labels)
DIGITS_KERAS_NAMES = ("digits_cnn", "digits_vgg", "digits_vgg_fc")


def _native(model) -> bool:
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return shape == (8, 8, 1)


def eval_inputs(model, n_calib: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Calibration and evaluation inputs for ``model`` (cheap: no inference).

    The digits images as they are for an 8x8x1 model, otherwise resized (and
    repeated over channels) to the model's input shape.
    """
    from toolkit.models.graph import check_keras_model

    check_keras_model(model, "eval_inputs")
    check_count(n_calib, "n_calib (calibration inputs)")
    digits = load_digits_data()
    if _native(model):
        return digits.x_train[:n_calib], digits.x_test
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return _resize(digits.x_train[:n_calib], shape), _resize(digits.x_test, shape)


def reference_labels(model, x_eval: np.ndarray) -> tuple[np.ndarray, str]:
    """Reference labels of ``x_eval`` and where they come from.

    True digit labels for a model trained on the digits (8x8x1 input, or a
    shipped digits model at its larger input); otherwise the unsplit fp32
    model's own top-1 predictions (``fp32-model``: accuracy then means agreement).
    """
    if _native(model) or model.name in DIGITS_KERAS_NAMES:
        return load_digits_data().y_test, "labels"
    return np.argmax(model.predict(x_eval, batch_size=32, verbose=0), axis=-1), "fp32-model"


def eval_data(model, n_calib: int = 200) -> EvalData:
    """Inputs and reference labels for ``model`` in one record.

    Raises:
        ToolkitError: ``model`` is no Keras model (e.g. a model's name: load it first).
    """
    from toolkit.models.graph import check_keras_model

    check_keras_model(model, "eval_data")
    x_calib, x_eval = eval_inputs(model, n_calib)
    y_eval, source = reference_labels(model, x_eval)
    return EvalData(x_calib, x_eval, y_eval, source)


def preprocess(name: str, images: np.ndarray) -> np.ndarray:
    """``images`` (float pixels 0..255) as model ``name`` expects them."""
    kind = PREPROCESSING.get(str(name).partition(":")[0], "scale:255")
    x = np.asarray(images, dtype="float32")
    if kind.startswith("scale:"):
        return x / np.float32(kind.partition(":")[2])
    if kind == "vit":
        return x / np.float32(127.5) - np.float32(1.0)
    import keras

    return np.asarray(getattr(keras.applications, kind).preprocess_input(x.copy()),
                      dtype="float32")


def _no_folder(root: Path) -> ToolkitError:
    return ToolkitError(f"data folder {root} does not exist; give a folder with one "
                        "subfolder of images per class")


def image_files(path: str | os.PathLike) -> list[str]:
    """The images of a class-folder tree that :func:`folder_data` reads, without reading them.

    The same walk as ``keras.utils.image_dataset_from_directory``: every
    subfolder of ``path`` is a class, and every file under it (at any depth)
    ending in one of :data:`IMAGE_FORMATS` is one of its images; files directly
    in ``path`` are not. Used to check a folder and to copy it to another host.

    Returns:
        The images' paths relative to ``path`` (``/``-separated), in class and
        file order.

    Raises:
        ToolkitError: the folder is missing, has no class subfolders, or they hold
            no images (one line naming the folder and what it needs).
    """
    root = as_path(path, "an image folder")
    if not root.is_dir():
        raise _no_folder(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ToolkitError(f"data folder {root} has no subfolders; it needs one subfolder of "
                           f"images ({', '.join(IMAGE_FORMATS)}) per class")
    found = []
    for name in classes:
        for folder, _, files in sorted(os.walk(root / name), key=lambda x: x[0]):
            rel = Path(folder).relative_to(root).as_posix()
            found += [f"{rel}/{f}" for f in sorted(files) if f.lower().endswith(IMAGE_FORMATS)]
    if not found:
        raise ToolkitError(f"data folder {root} holds no images in its class subfolders "
                           f"({', '.join(classes[:3])}{', ...' if len(classes) > 3 else ''}); "
                           f"allowed: {', '.join(IMAGE_FORMATS)}")
    return found


def _unreadable_image(root: Path) -> str | None:
    """The message naming the first image under ``root`` that cannot be decoded."""
    from PIL import Image

    for rel in image_files(root):
        try:
            with Image.open(root / rel) as image:
                image.load()
        except Exception as exc:  # PIL raises several kinds for a broken file
            return (f"data folder {root}: cannot read image {rel} ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else 'broken file'}); remove or "
                    "replace it")
    return None


def folder_data(path: str | os.PathLike, model, name: str, n_calib: int = 200) -> EvalData:
    """Evaluation data from a folder of images, one subfolder per class.

    Args:
        path: the folder (e.g. an ImageNet validation subset: ``n01440764/...``).
        model: the Keras model (its input shape sets the image size and channels).
        name: the model's name, which picks its preprocessing (:data:`PREPROCESSING`).
        n_calib: images (the first ones, in file order) also used to calibrate
            int8 heads.

    Returns:
        ``EvalData`` with every image in ``x_eval``, the class index of its
        subfolder (sorted names) in ``y_eval``, ``label_source = "labels"``.

    Raises:
        ToolkitError: the folder is missing or holds no images in class subfolders,
            or an image cannot be decoded (named).
    """
    import keras

    root = as_path(path, "an image folder")
    if not root.is_dir():
        raise _no_folder(root)
    h, w, c = (int(d) for d in model.inputs[0].shape[1:])
    try:
        ds = keras.utils.image_dataset_from_directory(
            root, labels="inferred", label_mode="int", color_mode="grayscale" if c == 1
            else "rgb", image_size=(h, w), shuffle=False, batch_size=256, verbose=False)
    except ValueError as exc:
        raise ToolkitError(f"data folder {root}: {first_line(exc)}") from None
    xs, ys = [], []
    try:
        for x, y in ds:
            xs.append(np.asarray(x))
            ys.append(np.asarray(y))
    except Exception as exc:  # TensorFlow's decode error names no file
        raise ToolkitError(_unreadable_image(root) or f"data folder {root}: cannot read its "
                           f"images: {first_line(exc)}") from None
    if not xs:
        raise ToolkitError(f"data folder {root} holds no images in class subfolders")
    x = preprocess(name, np.concatenate(xs))
    y = np.concatenate(ys).astype("int64")
    return EvalData(x[:n_calib], x, y, "labels")
