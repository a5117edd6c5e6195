"""Entry point of one rank of a distributed discovery, started by torchrun
(benchmark.workflow.ranks.run_ranks): `python -m benchmark.workflow.rank_main JOBFILE RESULTFILE`.

`record` (torch.distributed.elastic) writes a failing rank's traceback to the error file torchrun
gives it, so that torchrun's failure summary shows the rank's exception, not only its exit code.
"""
import sys

from torch.distributed.elastic.multiprocessing.errors import record

from benchmark.workflow.ranks import rank


@record
def main() -> None:
    job_file, result_file = sys.argv[1:3]
    rank(job_file, result_file)


if __name__ == "__main__":
    main()
