"""Declarative automation: new raw partitions flow by themselves to session bars, features, the matrix
and the training tables.

- ``conditions``: the custom ``AutomationCondition`` pieces no public operator composes (lookback
  fan-out, down-mapped dependency updates with timing, timing-precise "handled", the whole-graph gate);
- ``flows``: the condition of every automated asset, composed from those pieces and Dagster's public
  operators, and ``with_automation`` which sets them on the asset specs;
- ``sensor``: the automation sensor, the tick interval every sensor shares, the newest partition date.
"""
