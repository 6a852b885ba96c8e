"""read_tabular: read the producer's CSV as a tabular dataset through the run context.

The input is consumed "direct": the script gets a dataset object, not a path, and turns it into a
pandas DataFrame. Writes <out>/table_summary.json.
"""

import argparse
import json
import os

from azureml.core import Run


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("read_tabular\n")

    run = Run.get_context()
    dataframe = run.input_datasets["table_rows"].to_pandas_dataframe()
    names = [str(v) for v in dataframe["name"]]
    scores = [float(v) for v in dataframe["score"]]
    summary = {
        "rows": len(dataframe),
        "columns": [str(c) for c in dataframe.columns],
        "names": names,
        "score_sum": round(sum(scores), 6),
        "best": names[scores.index(max(scores))],
    }
    run.log("rows", summary["rows"])
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "table_summary.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)
        fh.write("\n")
    print(f"read_tabular: {summary['rows']} rows, score sum {summary['score_sum']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
