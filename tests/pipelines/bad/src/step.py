"""A harmless step script used by the bad-input files (they must fail before anything runs)."""

import sys

print("step: ran with", sys.argv[1:])
