"""What a decode reports: the error it raises (:class:`DbnDecodeError`) and the counters of what it
read and dropped (:class:`DecodeStats`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class DbnDecodeError(ValueError):
    """A DBN file cannot be decoded; the message names the file and the reason."""


@dataclass
class DecodeStats:
    """Counters of one decode: filled progressively by :func:`chimera_assets.dbn.decode.iter_decoded_chunks`.

    ``unmapped_dropped`` is the number of records dropped because their instrument id had no
    symbology mapping on their date; ``unmapped_instrument_ids`` lists (up to 50) of those ids.
    ``ambiguous_records`` counts records whose (instrument_id, date) matched several requested
    series (e.g. ``ES.v.0`` and ``ES.c.0`` both on the same contract): they are kept once, with the
    alphabetically first series. ``unparseable_series`` lists requested symbols whose root cannot be
    parsed (e.g. options); their records are dropped and counted as unmapped.
    """

    path: Path | None = None
    schema: str | None = None
    records_read: int = 0
    rows_out: int = 0
    unmapped_dropped: int = 0
    unmapped_instrument_ids: list[int] = field(default_factory=list)
    ambiguous_records: int = 0
    unparseable_series: list[str] = field(default_factory=list)
