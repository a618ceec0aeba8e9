"""The report as one self-contained HTML page: `report.md` rendered with its tables, every
figure it links embedded in the page (a data URI), so that the page opens anywhere, inside the
workflow's HTML report (`snakemake --report`) too, and shows what the markdown shows."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import markdown

STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.86em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; image-rendering: pixelated; vertical-align: top; margin: 0.2em; }
h2 { border-bottom: 1px solid #ddd; margin-top: 1.8em; }
"""

IMAGE = re.compile(r'<img alt="([^"]*)" src="([^"]+)"')


def embedded(html: str, folder: Path) -> str:
    """`html` with every image it links, relative to `folder`, carried in the page."""

    def inline(match: re.Match) -> str:
        alt, source = match.groups()
        if source.startswith("data:"):
            return match.group(0)
        data = (folder / source).read_bytes()
        encoded = base64.b64encode(data).decode()
        return f'<img alt="{alt}" src="data:image/png;base64,{encoded}"'

    return IMAGE.sub(inline, html)


def render(text: str, folder: Path, title: str) -> str:
    """The markdown `text`, whose figures are linked relative to `folder`, as one HTML page."""
    body = markdown.markdown(text, extensions=["tables", "toc"])
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{STYLE}</style></head>\n<body>\n"
        f"{embedded(body, folder)}\n</body></html>\n"
    )
