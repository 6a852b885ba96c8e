"""report: print a short summary (numpy comes from the step's environment when present)."""

try:
    import numpy as np

    print("report: mean", float(np.mean([1, 2, 3])))
except ImportError:
    print("report: mean", sum([1, 2, 3]) / 3)
