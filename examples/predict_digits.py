"""Recognize the bundled noisy digit images with ``ort``.

Loads ``digits.onnx`` (a small Conv -> Relu -> MaxPool -> Gemm -> Softmax classifier trained
by ``make_digits_model.py``) and ``digits_samples.npy`` from this script's folder, runs them
through ``ort.InferenceSession`` and prints, for every sample, an ASCII rendering of the 8x8
image, the predicted digit with its probability, and the true label; then the accuracy.

Usage (from anywhere): ``python examples/predict_digits.py [--provider NAME] [--per-row N]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import ort

HERE = Path(__file__).resolve().parent
MODEL_PATH = HERE / "digits.onnx"
SAMPLES_PATH = HERE / "digits_samples.npy"

#: Characters from no ink to full ink; each pixel is drawn two characters wide.
SHADES = " .:-=+*#%@"


def render(image: np.ndarray) -> list[str]:
    """ASCII art lines for one [1, H, W] (or [H, W]) image with values in [0, 1]."""
    pixels = np.clip(np.asarray(image, dtype=np.float32).reshape(image.shape[-2:]), 0.0, 1.0)
    levels = np.rint(pixels * (len(SHADES) - 1)).astype(int)
    return ["".join(SHADES[level] * 2 for level in row) for row in levels]


def print_results(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                  per_row: int) -> None:
    """Print the samples side by side, ``per_row`` at a time, each with its caption."""
    width = 2 * images.shape[-1] + 2  # framed with '|' on both sides
    gap = "   "
    for start in range(0, len(images), per_row):
        group = range(start, min(start + per_row, len(images)))
        captions = [[f"#{i}", f"pred {probabilities[i].argmax()} "
                              f"({probabilities[i].max():.0%})",
                     f"true {labels[i]} " + ("ok" if probabilities[i].argmax() == labels[i]
                                              else "WRONG")] for i in group]
        drawings = [render(images[i]) for i in group]
        border = gap.join("+" + "-" * (width - 2) + "+" for _ in group)
        print(border)
        for row in range(len(drawings[0])):
            print(gap.join("|" + drawing[row] + "|" for drawing in drawings))
        print(border)
        for line in range(3):
            print(gap.join(caption[line].ljust(width) for caption in captions).rstrip())
        print()


def main() -> int:
    """Run the bundled samples through the model and print the predictions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="CPUExecutionProvider",
                        help="execution provider to run on (default: %(default)s)")
    parser.add_argument("--per-row", type=int, default=6,
                        help="samples printed side by side (default: %(default)s)")
    args = parser.parse_args()

    samples = np.load(SAMPLES_PATH)
    images = np.ascontiguousarray(samples["image"], dtype=np.float32)
    labels = samples["label"]

    session = ort.InferenceSession(MODEL_PATH, providers=[args.provider])
    input_name = session.get_inputs()[0].name
    (probabilities,) = session.run(None, {input_name: images})

    print(f"model {MODEL_PATH.name}: input {input_name} {session.get_inputs()[0].shape}, "
          f"{len(images)} samples, provider {args.provider}\n")
    print_results(images, labels, probabilities, max(1, args.per_row))
    correct = int((probabilities.argmax(axis=1) == labels).sum())
    print(f"accuracy: {correct}/{len(labels)} = {correct / len(labels):.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
