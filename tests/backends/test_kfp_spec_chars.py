"""The KFP YAML writer's character classes, checked over every code point."""

from __future__ import annotations

import re

from mlpipe.backends import kfp_spec

# What a literal block may hold (YAML 1.2 printable characters less tab, CR and the line breaks
# other than \n): _BLOCK_UNSAFE lists exactly the rest.
BLOCK_SAFE = re.compile("[\n\x20-\x7e\xa0-\u2027\u202a-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")


def test_block_unsafe_is_the_complement_of_block_safe():
    unsafe = kfp_spec._BLOCK_UNSAFE
    wrong = [
        hex(c)
        for c in range(0x110000)
        if (unsafe.match(chr(c)) is None) == (BLOCK_SAFE.match(chr(c)) is None)
    ]
    assert wrong == []
