"""Names of the whole-graph job and its run tag, shared by the job (``defs/ops/whole_graph.py``) and the
automation conditions that hold while it runs (``lib/automation/conditions.py``).

Their own module because the job's op builds the code location's definitions, which include the
automation: if automation imported the name from the job's module, the three would import each other.
"""

WHOLE_GRAPH_JOB = "chimera_whole_graph"
PARENT_RUN_TAG = "chimera/whole_graph_run"
