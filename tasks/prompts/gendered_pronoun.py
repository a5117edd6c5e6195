"""Gendered pronoun: "Michael was late for work today because" -> " he" (" she" for a female
name). The corrupted prompt has a name of the other gender, which flips the answer.
Metric: logit(pronoun) - logit(other pronoun)."""
from __future__ import annotations

from benchmark.backends.lm.prompt_spec import Prompt, PromptTaskSpec, vocabulary
from tasks.prompts.names import FEMALE, MALE

TEMPLATES = (
    "{name} was late for work today because",
    "{name} said thank you to the driver, and then",
    "When the phone rang, {name} knew that",
    "After the long game, {name} told everyone that",
    "{name} opened the door and said that",
    "Nobody could find {name} at the party, because",
    "{name} loves to cook, so on Friday",
    "The teacher asked {name} a question, and",
)


def sample(rng):
    t = TEMPLATES[rng.integers(len(TEMPLATES))]
    male = bool(rng.integers(2))
    own, other = (MALE, FEMALE) if male else (FEMALE, MALE)
    name, swap = own[rng.integers(len(own))], other[rng.integers(len(other))]
    he, she = (" he", " she") if male else (" she", " he")
    return Prompt(clean=t.format(name=name), corrupted=t.format(name=swap), answer=he, rival=she)


PROMPT_TASK = PromptTaskSpec(
    name="gendered_pronoun", sample=sample, space=len(TEMPLATES) * (len(MALE) + len(FEMALE)),
    metric="logit_diff",
    words=vocabulary(*(t.format(name=n) for t in TEMPLATES for n in MALE + FEMALE), " he",
                     " she"),
    description="he or she after a gendered name")
