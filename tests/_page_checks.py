"""What a reader should never see in a report page: stderr, warnings, bare dict reprs."""

from __future__ import annotations

import html
import re

_OUTPUT = re.compile(
    r'data-mime-type="(?P<mime>[^"]+)"[^>]*>\s*<pre>(?P<text>.*?)</pre>', re.DOTALL
)
_TAG = re.compile(r"<[^>]+>")


def page_noise(document: str) -> list[str]:
    """One line per problem in an HTML report page (nbconvert's lab template).

    Flags stderr stream outputs, any visible ``Warning:`` text, and text outputs that start
    with ``{'`` (a dict printed by a cell's last expression). Empty when the page is clean.
    """
    found = []
    for match in _OUTPUT.finditer(document):
        mime, text = match["mime"], html.unescape(_TAG.sub("", match["text"]))
        first = text.strip().splitlines()[0][:120] if text.strip() else ""
        if mime == "application/vnd.jupyter.stderr":
            found.append(f"stderr output: {first}")
        elif mime == "text/plain" and text.lstrip().startswith("{'"):
            found.append(f"dict repr: {first}")
    body = document[document.find("<body"):]
    visible = html.unescape(_TAG.sub(" ", re.sub(r"<script.*?</script>", "", body, flags=re.DOTALL)))
    found += [f"warning text: ...{visible[max(0, m.start() - 60):m.end() + 60]}..."
              for m in re.finditer(r"Warning:", visible)]
    return found
