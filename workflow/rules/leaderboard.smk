rule leaderboard:
    """Every score row, per-task tables (CSV, Markdown, HTML) and plots."""
    input:
        [score_path(*g) for g in GROUPS],
    output:
        LEADERBOARD,
        report(PLOTS, category="Leaderboard"),
    log:
        f"{RESULTS}/logs/leaderboard.log",
    params:
        out_dir=lambda wc, output: os.path.dirname(output[0]),
        config=config,
        code=REPORT_KEY,  # the report code (benchmark/report/leaderboard.py and what it imports)
    localrule: True
    conda:
        "../envs/circuitbench.yaml"
    script:
        "../scripts/leaderboard.py"
