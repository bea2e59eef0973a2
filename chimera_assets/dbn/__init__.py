"""Fast, vectorised decoding of Databento DBN files (v1, v2, v3; ``.dbn`` or ``.dbn.zst``) into polars.

Records are read with ``DBNStore.from_file(path).to_ndarray(count=...)`` (numpy structured arrays,
C speed) and turned into polars columns without any per-record Python. Symbology comes from the
file's own metadata ``mappings`` (series symbol -> UTC-date intervals, end exclusive -> instrument id)
and is joined in polars on ``(instrument_id, UTC date)``. The date used for the join is the UTC date
of ``ts_recv`` for schemas that have it (statistics, definition) and of ``ts_event`` otherwise: the
same rule ``databento``'s own ``to_df(map_symbols=True)`` applies.

Modules (no Dagster import anywhere in this package):

* :mod:`~chimera_assets.dbn.diagnostics`: :class:`DbnDecodeError` and the :class:`DecodeStats` counters;
* :mod:`~chimera_assets.dbn.zstd`: the truncated-stream check of ``.zst`` files (frame headers only);
* :mod:`~chimera_assets.dbn.header`: opening a file and reading its header (:class:`DbnInfo`);
* :mod:`~chimera_assets.dbn.bounds`: the record bound a header allows (decompression bombs) and a
  validating record count;
* :mod:`~chimera_assets.dbn.columns`: numpy record fields -> polars columns (units below), CME trade dates;
* :mod:`~chimera_assets.dbn.symbology`: metadata mappings -> (instrument_id, date) -> series and root;
* :mod:`~chimera_assets.dbn.bars`, :mod:`~chimera_assets.dbn.statistics`,
  :mod:`~chimera_assets.dbn.instruments`: one chunk of OHLCV, statistics or definition records -> frame;
* :mod:`~chimera_assets.dbn.decode`: the public decoder (:func:`iter_decoded_chunks`, :func:`decode_dbn_file`).

Units and conventions of every output frame:

* prices: Databento fixed-point int64 (1e-9 units) divided by 1e9 into Float64 (the division of an
  exactly representable integer by 1e9 is correctly rounded, i.e. the closest double); the UNDEF
  sentinel (int64 max) becomes NULL;
* timestamps: ``Datetime("us", "UTC")``; nanoseconds are floored to microseconds (the warehouse
  TIMESTAMP resolution); the UNDEF sentinel (uint64 max) becomes NULL;
* ``trade_date``: CME trade date (:func:`chimera_assets.trade_calendar.trade_date_expr`);
* ``symbol``: the product root (``ZL``); ``series``: the requested symbol (``ZL.v.0``);
* integers are Int64 (the warehouse type), whatever the record layout's width.

Records whose instrument id has no mapping on their date are dropped, counted in
:class:`DecodeStats` and logged as a warning: an unmapped record would otherwise get a wrong or empty
root. Files requested with ``stype_in=instrument_id`` carry no symbology: their ``series`` is NULL and
their root must come from ``instrument_roots`` (e.g. from definitions); without it, decoding raises.

Errors are :class:`DbnDecodeError` (a ``ValueError``) naming the file: empty file, truncated file
(incomplete zstd frame or incomplete final record), non-DBN body, unsupported schema.
"""
