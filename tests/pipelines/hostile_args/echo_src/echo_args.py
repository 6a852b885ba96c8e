"""Write the arguments after `--output <dir>` to <dir>/args.json, exactly as received."""

import json
import os
import sys


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] != "--output":
        print(f"echo_args: expected --output <dir> first, got {sys.argv[1:3]!r}", file=sys.stderr)
        return 2
    out = sys.argv[2]
    received = sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "args.json"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(received, ensure_ascii=False, indent=1) + "\n")
    print(f"echo_args: received {len(received)} arguments")
    for i, arg in enumerate(received):
        print(f"echo_args: [{i}] {arg!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
