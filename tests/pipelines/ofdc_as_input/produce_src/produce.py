"""produce: write a small CSV table, a notes file and a values file into three outputs."""

import argparse
import os

ROWS = [
    ("id", "name", "score"),
    ("1", "alpha", "0.5"),
    ("2", "beta", "1.25"),
    ("3", "gamma", "2.0"),
    ("4", "delta", "3.75"),
    ("5", "epsilon", "4.5"),
]


def write(folder: str, filename: str, text: str) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, filename), "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", required=True)
    parser.add_argument("--mounted", required=True)
    parser.add_argument("--uploaded", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    with open(args.log, "a", encoding="utf-8") as fh:
        fh.write("produce\n")

    write(args.table, "rows.csv", "".join(",".join(r) + "\n" for r in ROWS))
    write(args.mounted, "notes.txt", "written through a mounted output\n")
    write(os.path.join(args.mounted, "sub"), "nested.txt", "a file in a sub-folder\n")
    write(args.uploaded, "values.txt", "".join(f"{n}\n" for n in (3, 1, 4, 1, 5, 9, 2, 6)))
    print(
        "produce: wrote table/rows.csv, mounted/notes.txt, mounted/sub/nested.txt, uploaded/values.txt"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
