"""Clinical documents typeset from HTML templates to PDF (WeasyPrint).

Every printable clinical document (the session summary, the progress report, and those
to come) is a Jinja template extending ``documents/base.html``: the clinic's letterhead,
the patient's identifiers and the page number on every page, and print CSS for tables
that wrap instead of running off the page. :func:`render_pdf` typesets it; charts are
inline SVG from :mod:`ketacare.clinic.documents.charts`, scaled to the data.
"""

from ketacare.clinic.documents.render import (
    Document,
    Identity,
    Letterhead,
    render_html,
    render_pdf,
)

__all__ = ["Document", "Identity", "Letterhead", "render_html", "render_pdf"]
