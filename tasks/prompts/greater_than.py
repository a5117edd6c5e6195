"""Greater-Than (after Hanna et al. 2023): "The war lasted from the year 1732 to the year 17"
-> a two-digit end year greater than 32. The corrupted prompt starts in year 01, which says
nothing. Metric: probability of end years > YY minus probability of end years <= YY."""
from __future__ import annotations

from benchmark.backends.lm.prompt_spec import Prompt, PromptTaskSpec, vocabulary

NOUNS = ("war", "expedition", "drought", "reign", "project", "trial", "strike", "festival",
         "dynasty", "famine", "campaign", "voyage", "siege", "boom", "treaty", "occupation",
         "crisis", "revolt", "plague", "journey", "alliance", "empire", "conflict", "movement",
         "program", "tour", "exile", "partnership", "rivalry", "blockade", "truce", "mission",
         "survey", "contract", "crusade", "experiment", "period", "era", "schism", "embargo")
CENTURIES = tuple(range(11, 18))   # 1100s to 1700s
STARTS = tuple(range(2, 99))       # YY: 02..98, so some year is greater and some not
TEMPLATE = "The {noun} lasted from the year {xx}{yy:02d} to the year {xx}"


def sample(rng):
    noun = NOUNS[rng.integers(len(NOUNS))]
    xx = CENTURIES[rng.integers(len(CENTURIES))]
    yy = STARTS[rng.integers(len(STARTS))]
    return Prompt(clean=TEMPLATE.format(noun=noun, xx=xx, yy=yy),
                  corrupted=TEMPLATE.format(noun=noun, xx=xx, yy=1),
                  answer=f"{min(yy + 1, 99):02d}", rival=f"{yy:02d}")


PROMPT_TASK = PromptTaskSpec(
    name="greater_than", sample=sample, space=len(NOUNS) * len(CENTURIES) * len(STARTS),
    metric="greater_than",
    words=vocabulary(*(TEMPLATE.format(noun=n, xx=x, yy=1) for n in NOUNS for x in CENTURIES),
                     *(f"{y:02d}" for y in range(100))),
    description="end year greater than the start year")
