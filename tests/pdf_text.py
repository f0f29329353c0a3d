"""Read a PDF back as its reader sees it (poppler's ``pdftotext`` and ``pdftoppm``).

Shared by the tests of every typeset document: the text of each page, the words or ink
that reach into the side margins, and the patient named on every page.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from xml.etree import ElementTree

PAGE_MARGIN_PT = 15 / 25.4 * 72  # the documents' left and right page margins (15 mm)


def pages_of(pdf: bytes) -> list[str]:
    """The text of each page (pdftotext ends every page with a form feed)."""
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    return text.split("\f")[:-1]


def flat(pdf: bytes) -> str:
    """The whole text on one line, runs of white space as one space."""
    return " ".join(" ".join(pages_of(pdf)).split())


def words_outside_the_margins(pdf: bytes) -> list[str]:
    """Every word whose box reaches into the left or right page margin (or off the page)."""
    xhtml = subprocess.run(
        ["pdftotext", "-bbox", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    root = ElementTree.fromstring(xhtml)
    outside = []
    for number, page in enumerate(root.iter("{http://www.w3.org/1999/xhtml}page"), start=1):
        width = float(page.attrib["width"])
        for word in page.iter("{http://www.w3.org/1999/xhtml}word"):
            x_min, x_max = float(word.attrib["xMin"]), float(word.attrib["xMax"])
            if x_min < PAGE_MARGIN_PT - 1 or x_max > width - PAGE_MARGIN_PT + 1:
                outside.append(f"page {number}: {word.text!r} at x {x_min:.0f}-{x_max:.0f}")
    return outside


def ink_outside_the_margins(pdf: bytes, folder: Path) -> list[str]:
    """Every page with anything drawn (a rule, a border, a chart) in its left or right margin."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "document.pdf").write_bytes(pdf)
    # at 72 dots per inch one pixel is one point
    subprocess.run(
        ["pdftoppm", "-r", "72", "-gray", str(folder / "document.pdf"), str(folder / "page")],
        check=True,
    )
    margin = int(PAGE_MARGIN_PT) - 1  # one pixel of anti-aliasing allowed
    found = []
    for path in sorted(folder.glob("page-*.pgm")):
        with Image.open(path) as image:
            width, height = image.size
            for left in (0, width - margin):
                darkest = image.crop((left, 0, left + margin, height)).getextrema()[0]
                if darkest < 200:
                    found.append(f"{path.stem}: ink in the margin from x {left}")
    return found


def every_page_names_the_patient(pdf: bytes, name: str, mrn: str) -> None:
    pages = pages_of(pdf)
    assert pages
    for number, text in enumerate(pages, start=1):
        line = " ".join(text.split())
        assert name in line and f"MRN {mrn}" in line, f"page {number} lacks the patient"
        assert f"Page {number} of {len(pages)}" in line, f"page {number} lacks its number"
