"""Writes one benchmark's section into BENCHMARKS.md between its markers."""

import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_block(start, end, block, path=os.path.join(REPO, "BENCHMARKS.md")):
    """Replaces the text from `start` to `end` (markers included) with
    `block`, or appends `block` when the markers are absent."""
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as handle:
        handle.write(text)
