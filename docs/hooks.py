"""MkDocs hooks for the keras-kd site.

Code fences in the guides carry a word after the language that the tests
read (`tests/docs/test_guides.py`):

- ```` ```python setup ````: the page's setup (models, data), run first by
  the tests; rendered as a collapsed "Setup" box.
- ```` ```python skip-test <why> ````: a block the tests do not run (it
  needs hardware or machines the tests lack); rendered as plain Python.
"""

import re

FENCE = re.compile(r"^```python (setup|skip-test)(?: [^\n]*)?\n(.*?)^```[ \t]*$", re.M | re.S)


def _render(match):
    kind, code = match.group(1), match.group(2)
    if kind == "skip-test":
        return "```python\n" + code + "```"
    body = "\n".join(("    " + line) if line else "" for line in
                     ("```python\n" + code + "```").split("\n"))
    return '??? note "Setup: the models and data this page uses"\n\n' + body


def on_page_markdown(markdown, page, config, files):
    return FENCE.sub(_render, markdown)
