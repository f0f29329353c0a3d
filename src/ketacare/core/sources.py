"""The one citation type: where a clinical number, rule or text comes from.

Every data file in the core (models, instruments, protocols, outcome definitions,
screening rules, session rules) cites its sources, and each is read into a
:class:`Source`. The files differ in what they record about a source (a model file
gives authors, year, title and journal; a protocol file gives a short label, what was
read and the passage quoted), so every field but ``citation`` is optional and a file
format fills the fields it has. :meth:`~ketacare.core.datafile.Reader.sources` reads
them, with the same checks and messages for every file.

Examples
--------
>>> s = Source(key="dworkin-2008", citation="Dworkin RH et al. J Pain 2008;9:105-21.",
...            url="https://doi.org/10.1016/j.jpain.2007.09.005")
>>> s.text
'Dworkin RH et al. J Pain 2008;9:105-21. https://doi.org/10.1016/j.jpain.2007.09.005'
>>> format_citation(authors="Domino EF et al.", year=1984, title="Ketamine kinetics",
...                 journal="Clin Pharmacol Ther", doi="10.1038/clpt.1984.1")
'Domino EF et al. (1984). Ketamine kinetics. Clin Pharmacol Ther. doi:10.1038/clpt.1984.1'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Source", "format_citation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """A publication, label, registry entry or specification a data file cites.

    ``key`` is the name entries of the file refer to (empty when the file lists its
    sources without keys); ``citation`` is the one-line reference; ``label`` a short
    name shown beside a number; ``read`` says what was actually read (``abstract``,
    ``label``, ``full text`` ...); ``quote`` is the passage (or the paraphrase of what
    the source says) that the numbers rest on; ``supports`` lists what the source
    supports (an instrument's ``items``, ``scoring``, ``bands`` ...). ``authors``,
    ``year``, ``title`` and ``journal`` are the structured parts a model file gives
    (its ``citation`` is built from them), ``verified`` whether the primary paper was
    read, and ``note`` anything else the file says about the source.
    """

    key: str = ""
    citation: str
    url: str = ""
    doi: str | None = None
    label: str = ""
    read: str = ""
    quote: str = ""
    supports: tuple[str, ...] = ()
    authors: str | None = None
    year: int | None = None
    title: str | None = None
    journal: str | None = None
    verified: bool | None = None
    note: str | None = None

    @property
    def text(self) -> str:
        """The citation and its URL on one line.

        Examples
        --------
        >>> Source(citation="Spravato label.", url="").text
        'Spravato label.'
        """
        return f"{self.citation} {self.url}".strip()

    @property
    def statement(self) -> str:
        """What the source says that supports the numbers (the outcome files' name for it)."""
        return self.quote


def format_citation(
    *,
    authors: str,
    year: int,
    title: str,
    journal: str,
    doi: str | None = None,
    url: str | None = None,
) -> str:
    """One-line citation: authors (year). title. journal. doi (or url).

    Examples
    --------
    >>> format_citation(authors="A", year=2020, title="T", journal="J", url="https://x.org")
    'A (2020). T. J. https://x.org'
    """
    link = f"doi:{doi}" if doi else (url or "")
    return f"{authors} ({year}). {title}. {journal}. {link}".strip()
