"""Train a tiny digit classifier with numpy and export it as ``examples/digits.onnx``.

The digits 0-9 are hand-drawn 5x7 bitmap glyphs (defined below, like an old LCD font). The
training set is made of noisy variants of them placed at random positions on an 8x8 canvas:
random shifts, random ink intensity, Gaussian noise and a few flipped pixels. The network is

    input float[batch, 1, 8, 8]
      -> Conv 3x3 (16 filters, pad 1) -> Relu -> MaxPool 2x2
      -> Flatten -> Gemm (256 -> 10) -> Softmax -> probabilities float[batch, 10]

trained with plain numpy (hand-written backward pass, Adam, seeded: the output is the same on
every run) in a few seconds. The script writes:

* ``examples/digits.onnx`` -- the model (about 12 KB), built with ``onnx.helper``;
* ``examples/digits_samples.npy`` -- a few fresh noisy glyphs as a structured array with fields
  ``image`` (float32 [1, 8, 8]) and ``label`` (int64), read by ``predict_digits.py``.

It needs only numpy and onnx. If onnxruntime is installed it is used to double-check the
exported model; otherwise ``onnx.reference`` is.

Usage: ``python examples/make_digits_model.py``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
MODEL_PATH = HERE / "digits.onnx"
SAMPLES_PATH = HERE / "digits_samples.npy"

CANVAS = 8      # images are CANVAS x CANVAS
FILTERS = 16    # conv filters
CLASSES = 10

#: The 5x7 glyphs, one string per row, ``#`` = ink.
GLYPHS: dict[int, list[str]] = {
    0: [".###.",
        "#...#",
        "#..##",
        "#.#.#",
        "##..#",
        "#...#",
        ".###."],
    1: ["..#..",
        ".##..",
        "..#..",
        "..#..",
        "..#..",
        "..#..",
        ".###."],
    2: [".###.",
        "#...#",
        "....#",
        "...#.",
        "..#..",
        ".#...",
        "#####"],
    3: ["#####",
        "...#.",
        "..#..",
        "...#.",
        "....#",
        "#...#",
        ".###."],
    4: ["...#.",
        "..##.",
        ".#.#.",
        "#..#.",
        "#####",
        "...#.",
        "...#."],
    5: ["#####",
        "#....",
        "####.",
        "....#",
        "....#",
        "#...#",
        ".###."],
    6: ["..##.",
        ".#...",
        "#....",
        "####.",
        "#...#",
        "#...#",
        ".###."],
    7: ["#####",
        "....#",
        "...#.",
        "..#..",
        ".#...",
        ".#...",
        ".#..."],
    8: [".###.",
        "#...#",
        "#...#",
        ".###.",
        "#...#",
        "#...#",
        ".###."],
    9: [".###.",
        "#...#",
        "#...#",
        ".####",
        "....#",
        "...#.",
        ".##.."],
}

#: Structured dtype of ``digits_samples.npy``.
SAMPLE_DTYPE = np.dtype([("image", np.float32, (1, CANVAS, CANVAS)), ("label", np.int64)])


def glyph_array(digit: int) -> np.ndarray:
    """The 7x5 bitmap of ``digit`` as a float32 array of 0s and 1s."""
    return np.array([[1.0 if c == "#" else 0.0 for c in row] for row in GLYPHS[digit]],
                    dtype=np.float32)


def make_dataset(count: int, rng: np.random.Generator,
                 noise: float = 0.2, flip: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """``count`` noisy, shifted glyphs: images float32 [count, 1, 8, 8] and labels int64.

    Each image places a glyph at a random offset on the 8x8 canvas (rows 0-1, columns 0-3),
    scales its ink by a random intensity in [0.6, 1], adds Gaussian noise of std ``noise``,
    flips each pixel with probability ``flip`` and clips to [0, 1].
    """
    glyphs = [glyph_array(d) for d in range(CLASSES)]
    height, width = glyphs[0].shape
    labels = rng.integers(0, CLASSES, size=count).astype(np.int64)
    images = np.zeros((count, 1, CANVAS, CANVAS), dtype=np.float32)
    for i, label in enumerate(labels):
        top = rng.integers(0, CANVAS - height + 1)
        left = rng.integers(0, CANVAS - width + 1)
        images[i, 0, top:top + height, left:left + width] = glyphs[label] * rng.uniform(0.6, 1.0)
    images += rng.normal(0.0, noise, size=images.shape).astype(np.float32)
    flips = rng.random(images.shape) < flip
    images[flips] = 1.0 - images[flips]
    return np.clip(images, 0.0, 1.0), labels


class DigitNet:
    """Conv3x3 -> Relu -> MaxPool2x2 -> Flatten -> Gemm -> Softmax, in numpy.

    Weights use the ONNX layouts directly: ``conv_w`` [F, 1, 3, 3], ``conv_b`` [F],
    ``fc_w`` [10, F*4*4] (Gemm with transB=1), ``fc_b`` [10].
    """

    def __init__(self, rng: np.random.Generator) -> None:
        """He-initialised weights drawn from ``rng``."""
        pooled = CANVAS // 2
        features = FILTERS * pooled * pooled
        self.params = {
            "conv_w": rng.normal(0, np.sqrt(2 / 9), (FILTERS, 1, 3, 3)).astype(np.float32),
            "conv_b": np.zeros(FILTERS, dtype=np.float32),
            "fc_w": rng.normal(0, np.sqrt(1 / features), (CLASSES, features)).astype(np.float32),
            "fc_b": np.zeros(CLASSES, dtype=np.float32),
        }

    @staticmethod
    def im2col(images: np.ndarray) -> np.ndarray:
        """3x3 patches of the zero-padded images: [N, 64, 9], patch index ``ky * 3 + kx``."""
        padded = np.pad(images[:, 0], ((0, 0), (1, 1), (1, 1)))
        patches = [padded[:, ky:ky + CANVAS, kx:kx + CANVAS] for ky in range(3) for kx in range(3)]
        return np.stack(patches, axis=-1).reshape(len(images), CANVAS * CANVAS, 9)

    def forward(self, images: np.ndarray) -> tuple[np.ndarray, dict]:
        """Class probabilities [N, 10] and the intermediates the backward pass needs."""
        p = self.params
        n = len(images)
        cols = self.im2col(images)                                           # [N, 64, 9]
        conv = cols @ p["conv_w"].reshape(FILTERS, 9).T + p["conv_b"]         # [N, 64, F]
        relu = np.maximum(conv, 0.0).reshape(n, CANVAS, CANVAS, FILTERS)
        half = CANVAS // 2
        windows = relu.reshape(n, half, 2, half, 2, FILTERS)
        pooled = windows.max(axis=(2, 4))                                     # [N, 4, 4, F]
        flat = pooled.transpose(0, 3, 1, 2).reshape(n, -1)                   # ONNX Flatten order
        logits = flat @ p["fc_w"].T + p["fc_b"]
        logits = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        cache = {"cols": cols, "conv": conv, "windows": windows, "pooled": pooled, "flat": flat}
        return probs, cache

    def backward(self, probs: np.ndarray, labels: np.ndarray, cache: dict) -> dict:
        """Gradients of the mean cross-entropy loss with respect to every parameter."""
        p = self.params
        n = len(labels)
        half = CANVAS // 2
        d_logits = probs.copy()
        d_logits[np.arange(n), labels] -= 1.0
        d_logits /= n
        grads = {"fc_w": d_logits.T @ cache["flat"], "fc_b": d_logits.sum(axis=0)}
        d_pooled = (d_logits @ p["fc_w"]).reshape(n, FILTERS, half, half).transpose(0, 2, 3, 1)
        # Max pooling routes the gradient to the window's maximum.
        is_max = cache["windows"] == cache["pooled"][:, :, None, :, None, :]
        d_relu = (is_max * d_pooled[:, :, None, :, None, :]).reshape(n, CANVAS * CANVAS, FILTERS)
        d_conv = d_relu * (cache["conv"] > 0)
        grads["conv_w"] = np.einsum("npf,npk->fk", d_conv, cache["cols"]).reshape(FILTERS, 1, 3, 3)
        grads["conv_b"] = d_conv.sum(axis=(0, 1))
        return grads

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities [N, 10]."""
        return self.forward(images)[0]


def train(net: DigitNet, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
          epochs: int = 20, batch_size: int = 128, lr: float = 0.01) -> None:
    """Minibatch Adam on the cross-entropy loss; prints the loss every few epochs."""
    moments = {k: np.zeros_like(v) for k, v in net.params.items()}
    velocities = {k: np.zeros_like(v) for k, v in net.params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(images))
        total_loss = 0.0
        for start in range(0, len(images), batch_size):
            batch = order[start:start + batch_size]
            probs, cache = net.forward(images[batch])
            total_loss += -np.log(probs[np.arange(len(batch)), labels[batch]] + 1e-12).sum()
            grads = net.backward(probs, labels[batch], cache)
            step += 1
            for key, grad in grads.items():
                moments[key] = beta1 * moments[key] + (1 - beta1) * grad
                velocities[key] = beta2 * velocities[key] + (1 - beta2) * grad * grad
                m_hat = moments[key] / (1 - beta1 ** step)
                v_hat = velocities[key] / (1 - beta2 ** step)
                net.params[key] -= (lr * m_hat / (np.sqrt(v_hat) + eps)).astype(np.float32)
        if epoch == 1 or epoch % 5 == 0:
            print(f"  epoch {epoch:2d}: loss {total_loss / len(images):.4f}")


def export_onnx(net: DigitNet) -> onnx.ModelProto:
    """The trained network as an opset-17 ONNX model with a dynamic ``batch`` dimension."""
    p = net.params
    initializers = [
        numpy_helper.from_array(p["conv_w"].astype(np.float32), "conv.weight"),
        numpy_helper.from_array(p["conv_b"].astype(np.float32), "conv.bias"),
        numpy_helper.from_array(p["fc_w"].astype(np.float32), "fc.weight"),
        numpy_helper.from_array(p["fc_b"].astype(np.float32), "fc.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv.weight", "conv.bias"], ["conv_out"],
                         name="/conv/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv_out"], ["relu_out"], name="/Relu"),
        helper.make_node("MaxPool", ["relu_out"], ["pool_out"], name="/MaxPool",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool_out"], ["flat"], name="/Flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="/fc/Gemm",
                         transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="/Softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "digits",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, CANVAS, CANVAS])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", CLASSES])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="ort-examples", producer_version="1.0",
                              doc_string="8x8 bitmap digit classifier (ort example)")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def run_exported(model: onnx.ModelProto, images: np.ndarray) -> tuple[np.ndarray, str]:
    """Run the exported model with onnxruntime if installed, else ``onnx.reference``."""
    try:
        import onnxruntime
    except ImportError:
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(model).run(None, {"image": images})[0], "onnx.reference"
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {"image": images})[0], "onnxruntime"


def main() -> int:
    """Train, export, check and write ``digits.onnx`` and ``digits_samples.npy``."""
    parser = argparse.ArgumentParser(description="Train and export the digits example model.")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--samples", type=int, default=12,
                        help="number of sample inputs to write (default: 12)")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    train_x, train_y = make_dataset(10000, rng)
    test_x, test_y = make_dataset(2000, rng)

    net = DigitNet(rng)
    print(f"training on {len(train_x)} noisy 8x8 glyphs ...")
    train(net, train_x, train_y, rng)
    accuracy = (net.predict(test_x).argmax(axis=1) == test_y).mean()
    print(f"numpy model accuracy on {len(test_x)} held-out glyphs: {accuracy:.1%}")

    model = export_onnx(net)
    exported, runtime = run_exported(model, test_x)
    np.testing.assert_allclose(exported, net.predict(test_x), rtol=1e-4, atol=1e-5)
    exported_accuracy = (exported.argmax(axis=1) == test_y).mean()
    print(f"exported model accuracy ({runtime}): {exported_accuracy:.1%}")

    # Samples: one of each digit first, then random ones, all freshly generated, a little
    # less noisy than the training data so that a person can still read them.
    sample_rng = np.random.default_rng(args.seed + 1000)
    sample_x, sample_y = make_dataset(max(args.samples * 4, 100), sample_rng,
                                      noise=0.08, flip=0.02)
    chosen = [int(np.flatnonzero(sample_y == d)[0]) for d in range(CLASSES)]
    rest = [i for i in range(len(sample_y)) if i not in chosen]
    chosen = (chosen + rest)[:args.samples]
    order = sample_rng.permutation(len(chosen))
    samples = np.zeros(len(chosen), dtype=SAMPLE_DTYPE)
    samples["image"] = sample_x[chosen][order]
    samples["label"] = sample_y[chosen][order]

    sample_probs, _ = run_exported(model, samples["image"])
    sample_accuracy = (sample_probs.argmax(axis=1) == samples["label"]).mean()
    print(f"exported model accuracy on the {len(samples)} bundled samples: {sample_accuracy:.1%}")
    if sample_accuracy < 0.9 or exported_accuracy < 0.9:
        raise SystemExit("accuracy below 90%: not writing the files")

    onnx.save(model, MODEL_PATH)
    np.save(SAMPLES_PATH, samples)
    print(f"wrote {MODEL_PATH} ({MODEL_PATH.stat().st_size} bytes)")
    print(f"wrote {SAMPLES_PATH} ({SAMPLES_PATH.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
