"""Training step: fit two small classifiers on the prepared features, in plain Python.

- nearest centroid: one mean vector per class, predict the closest (squared Euclidean distance);
- softmax regression: multinomial logistic regression trained by full-batch gradient descent from
  zero weights, so the result depends only on the data, --learning_rate and --epochs.

Images are split deterministically: every third image (in path order) is held out for testing.

Output: <training_results>/nearest_centroid.json, softmax_regression.json, metrics.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os


def load_features(folder: str) -> tuple[list[str], list[str], list[list[float]]]:
    names, labels, vectors = [], [], []
    with open(os.path.join(folder, "features.csv"), newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if header[:2] != ["image", "label"]:
            raise SystemExit(f"train: unexpected header {header[:2]}")
        for row in reader:
            names.append(row[0])
            labels.append(row[1])
            vectors.append([float(v) for v in row[2:]])
    return names, labels, vectors


def r6(x: float) -> float:
    return round(x, 6)


# --- nearest centroid -------------------------------------------------------------------------


def fit_centroids(xs: list[list[float]], ys: list[str], classes: list[str]) -> dict:
    centroids = {}
    for c in classes:
        members = [xs[i] for i in range(len(xs)) if ys[i] == c]
        width = len(members[0])
        centroids[c] = [sum(m[j] for m in members) / len(members) for j in range(width)]
    return centroids


def predict_centroid(centroids: dict, x: list[float]) -> str:
    best, best_d = None, math.inf
    for c in sorted(centroids):
        centre = centroids[c]
        d = sum((x[j] - centre[j]) ** 2 for j in range(len(x)))
        if d < best_d:
            best, best_d = c, d
    return best


# --- softmax regression -----------------------------------------------------------------------


def softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def scores_of(weights: list[list[float]], x: list[float]) -> list[float]:
    # weights[k] = [bias, w_1 .. w_d]
    return [w[0] + sum(w[i + 1] * x[i] for i in range(len(x))) for w in weights]


def fit_softmax(xs, ys, classes, learning_rate: float, epochs: int):
    k, d, n = len(classes), len(xs[0]), len(xs)
    index = {c: i for i, c in enumerate(classes)}
    weights = [[0.0] * (d + 1) for _ in range(k)]
    losses = []
    for _ in range(epochs):
        grad = [[0.0] * (d + 1) for _ in range(k)]
        loss = 0.0
        for x, y in ((xs[i], ys[i]) for i in range(n)):
            probs = softmax(scores_of(weights, x))
            target = index[y]
            loss -= math.log(max(probs[target], 1e-12))
            for j in range(k):
                err = probs[j] - (1.0 if j == target else 0.0)
                g = grad[j]
                g[0] += err
                for i, xi in enumerate(x):
                    g[i + 1] += err * xi
        for j in range(k):
            for i in range(d + 1):
                weights[j][i] -= learning_rate * grad[j][i] / n
        losses.append(loss / n)
    return weights, losses


def predict_softmax(weights, classes, x) -> str:
    scores = scores_of(weights, x)
    return classes[max(range(len(classes)), key=lambda j: (scores[j], -j))]


def accuracy(predict, xs, ys) -> float:
    if not xs:
        return 0.0
    return sum(1 for i, x in enumerate(xs) if predict(x) == ys[i]) / len(xs)


def write_json(path: str, data) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")


def main() -> int:
    parser = argparse.ArgumentParser(description="Train two small classifiers.")
    parser.add_argument("--prepped_data", required=True)
    parser.add_argument("--training_results", required=True)
    parser.add_argument("--learning_rate", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    if args.epochs < 1:
        raise SystemExit("train: --epochs must be at least 1")

    names, labels, vectors = load_features(args.prepped_data)
    classes = sorted(set(labels))
    train_x = [v for i, v in enumerate(vectors) if i % 3 != 2]
    train_y = [y for i, y in enumerate(labels) if i % 3 != 2]
    test_x = [v for i, v in enumerate(vectors) if i % 3 == 2]
    test_y = [y for i, y in enumerate(labels) if i % 3 == 2]
    print(f"train: {len(train_x)} training and {len(test_x)} test images, classes {classes}")
    print(f"train: learning_rate={args.learning_rate} epochs={args.epochs}")

    centroids = fit_centroids(train_x, train_y, classes)
    weights, losses = fit_softmax(train_x, train_y, classes, args.learning_rate, args.epochs)

    def nc(x):
        return predict_centroid(centroids, x)

    def sm(x):
        return predict_softmax(weights, classes, x)

    metrics = {
        "nearest_centroid": {
            "train_accuracy": r6(accuracy(nc, train_x, train_y)),
            "test_accuracy": r6(accuracy(nc, test_x, test_y)),
        },
        "softmax_regression": {
            "train_accuracy": r6(accuracy(sm, train_x, train_y)),
            "test_accuracy": r6(accuracy(sm, test_x, test_y)),
            "final_loss": r6(losses[-1]),
            "learning_rate": args.learning_rate,
            "epochs": args.epochs,
        },
        "train_images": len(train_x),
        "test_images": len(test_x),
    }

    os.makedirs(args.training_results, exist_ok=True)
    write_json(
        os.path.join(args.training_results, "nearest_centroid.json"),
        {
            "kind": "nearest_centroid",
            "classes": classes,
            "centroids": {c: [r6(v) for v in centroids[c]] for c in classes},
        },
    )
    write_json(
        os.path.join(args.training_results, "softmax_regression.json"),
        {
            "kind": "softmax_regression",
            "classes": classes,
            "weights": [[r6(v) for v in row] for row in weights],
        },
    )
    write_json(os.path.join(args.training_results, "metrics.json"), metrics)
    for model in ("nearest_centroid", "softmax_regression"):
        m = metrics[model]
        print(f"train: {model}: train {m['train_accuracy']:.3f}, test {m['test_accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
