"""The file names of the leaderboard job's outputs, in one place.

The workflow plans them (benchmark/workflow/plan.py, which must not import matplotlib: planning
runs twice per cluster job) and the report writes them (leaderboard.py, plots.py); a name known
twice drifted once. Imports nothing.
"""

# the tables, written by benchmark/report/leaderboard.py
TABLES = ("scores.csv", "summary.csv", "pairwise.csv", "scaling_table.csv", "leaderboard.csv",
          "leaderboard.md", "leaderboard.html")
# the PNGs, written by benchmark/report/plots.py, in the order plot_all draws them
PLOTS = ("faithfulness_vs_sparsity.png", "roc.png", "runtime_vs_examples.png",
         "scaling_vs_examples.png", "kl_vs_sparsity.png")
