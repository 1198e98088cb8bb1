"""A griffe extension for the API reference: doctest examples in the
docstrings (`>>> ...` and the lines that follow, up to a blank line) are
rendered as Python console code blocks instead of Markdown text (where
`>>>` would read as nested quotes and `[1.0, 2.0]` as a link)."""

import re

import griffe

_DOCTEST = re.compile(r"(?m)^(?P<indent>[ \t]*)>>> .*(?:\n(?P=indent)\S.*)*")


def fence_doctests(text):
    """`text` with every doctest block wrapped in a ```pycon fence."""

    def wrap(match):
        indent = match.group("indent")
        return f"{indent}```pycon\n{match.group(0)}\n{indent}```"

    return _DOCTEST.sub(wrap, text)


class DoctestFences(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
