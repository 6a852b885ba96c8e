"""Compare step: rank the models the training step wrote and pick the best one.

Ranking: higher test accuracy first, then higher train accuracy, then fewer parameters (the simpler
model wins a tie), then the model name.

Output: <report>/comparison.json (machine-readable) and <report>/report.md (for people)
"""

from __future__ import annotations

import argparse
import json
import os

MODEL_FILES = {
    "nearest_centroid": "nearest_centroid.json",
    "softmax_regression": "softmax_regression.json",
}


def parameter_count(model: dict) -> int:
    if model["kind"] == "nearest_centroid":
        return sum(len(v) for v in model["centroids"].values())
    if model["kind"] == "softmax_regression":
        return sum(len(row) for row in model["weights"])
    raise SystemExit(f"compare: unknown model kind {model['kind']!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Compare the trained models.")
    parser.add_argument("--training_results", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()

    with open(os.path.join(args.training_results, "metrics.json"), encoding="utf-8") as fh:
        metrics = json.load(fh)

    entries = []
    for name, filename in sorted(MODEL_FILES.items()):
        with open(os.path.join(args.training_results, filename), encoding="utf-8") as fh:
            model = json.load(fh)
        m = metrics[name]
        entries.append(
            {
                "model": name,
                "test_accuracy": m["test_accuracy"],
                "train_accuracy": m["train_accuracy"],
                "parameters": parameter_count(model),
            }
        )
        print(f"compare: {name}: test accuracy {m['test_accuracy']}")

    ranking = sorted(
        entries,
        key=lambda e: (-e["test_accuracy"], -e["train_accuracy"], e["parameters"], e["model"]),
    )
    best = ranking[0]
    result = {
        "best_model": best["model"],
        "ranking": ranking,
        "softmax_settings": {
            "learning_rate": metrics["softmax_regression"]["learning_rate"],
            "epochs": metrics["softmax_regression"]["epochs"],
            "final_loss": metrics["softmax_regression"]["final_loss"],
        },
        "test_images": metrics["test_images"],
    }

    os.makedirs(args.report, exist_ok=True)
    with open(os.path.join(args.report, "comparison.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2, sort_keys=True)
        fh.write("\n")

    lines = [
        "# Model comparison",
        "",
        f"Best model: **{best['model']}** on {metrics['test_images']} held-out images.",
        "",
        "| rank | model | test accuracy | train accuracy | parameters |",
        "| ---: | --- | ---: | ---: | ---: |",
    ]
    for rank, e in enumerate(ranking, start=1):
        lines.append(
            f"| {rank} | {e['model']} | {e['test_accuracy']:.4f} | {e['train_accuracy']:.4f} "
            f"| {e['parameters']} |"
        )
    s = result["softmax_settings"]
    lines += [
        "",
        f"Softmax regression: learning rate {s['learning_rate']}, {s['epochs']} epochs, "
        f"final training loss {s['final_loss']:.6f}.",
        "",
    ]
    with open(os.path.join(args.report, "report.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    print(f"compare: best model is {best['model']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
