"""fit: pretend to fit a model and say so."""

import sys

print("fit: arguments", sys.argv[1:])
