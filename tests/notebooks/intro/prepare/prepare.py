"""prepare: write a few numbers for the next steps to look at."""

import os

os.makedirs("outputs", exist_ok=True)
with open(os.path.join("outputs", "numbers.txt"), "w") as f:
    f.write("\n".join(str(n * n) for n in range(5)) + "\n")
print("prepare: wrote 5 squares")
