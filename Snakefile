# circuitbench: compile Tracr tasks, run circuit-discovery methods, score them, build a leaderboard.
#   snakemake --cores 2                      (default config)
#   snakemake --cores 2 --configfile config/ci.yaml
from snakemake.utils import min_version, validate

min_version("9.0")


# The default config applies only when none is given: `--configfile` replaces it rather than
# merging into it (a merge would run the default studies as well).
if not config:

    configfile: "config/config.yaml"



validate(config, "config/schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/tasks.smk"
include: "workflow/rules/discover.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/leaderboard.smk"


wildcard_constraints:
    n=r"\d+",
    seed=r"\d+",
    model=r"[A-Za-z0-9_.-]+",
    method=r"[^/]+",
    setting=r"[^/]+",  # one path component (benchmark/workflow/plan.py: setting_id encodes `/`)


# Circuits are targets too: deleting one run's circuit file reruns that run (and its scoring),
# where an intermediate file would be left missing while the leaderboard is up to date.
rule all:
    input:
        sorted(RUNS),
        LEADERBOARD,
        PLOTS,
    default_target: True
