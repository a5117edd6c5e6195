"""Indirect object identification (after Wang et al. 2022): "When Mary and John went to the
store, John gave a drink to" -> " Mary". Templates, places and objects are written here. The
corrupted prompt is from the ABC distribution: the same template with three other names, so
nothing in it says who the indirect object is. Metric: logit(IO) - logit(S)."""
from __future__ import annotations

from benchmark.backends.lm.prompt_spec import Prompt, PromptTaskSpec, vocabulary
from tasks.prompts.names import NAMES

TEMPLATES = (
    "When {A} and {B} went to the {place}, {S} gave a {thing} to",
    "After {A} and {B} arrived at the {place}, {S} handed a {thing} to",
    "While {A} and {B} were working at the {place}, {S} passed a {thing} to",
    "Then, {A} and {B} had a long talk at the {place}. {S} offered a {thing} to",
    "Yesterday {A} and {B} met at the {place}, and {S} sent a {thing} to",
    "Once {A} and {B} got to the {place}, {S} threw a {thing} to",
    "The {place} was quiet when {A} and {B} came in, so {S} showed a {thing} to",
    "On Sunday {A} and {B} cleaned the {place}, and later {S} lent a {thing} to",
    "Because {A} and {B} were hungry at the {place}, {S} brought a {thing} to",
    "Later that day {A} and {B} walked to the {place}, where {S} sold a {thing} to",
    "At the {place}, {A} and {B} argued for an hour, then {S} mailed a {thing} to",
    "Before {A} and {B} left the {place}, {S} returned a {thing} to",
)
PLACES = ("store", "park", "school", "station", "office", "garden", "market", "library",
          "hospital", "restaurant", "beach", "museum")
THINGS = ("drink", "book", "ring", "letter", "ball", "bottle", "key", "basket", "pen",
          "ticket", "gift", "bag")


def _fill(template, a, b, s, place, thing):
    return template.format(A=a, B=b, S=s, place=place, thing=thing)


def sampler(templates):
    def sample(rng):
        t = templates[rng.integers(len(templates))]
        io, s, x, y, z = (NAMES[i] for i in rng.choice(len(NAMES), 5, replace=False))
        place, thing = PLACES[rng.integers(len(PLACES))], THINGS[rng.integers(len(THINGS))]
        a, b = (io, s) if rng.integers(2) else (s, io)   # ABBA or BABA
        return Prompt(clean=_fill(t, a, b, s, place, thing),
                      corrupted=_fill(t, x, y, z, place, thing),
                      answer=" " + io, rival=" " + s)
    return sample


def spec(name, templates, description):
    # every slot is set off by literal text, so filling names and (place, thing) separately
    # gives the same pieces as the full product (checked), in 1/40 of its time at import
    words = vocabulary(*(_fill(t, n, n, n, PLACES[0], THINGS[0]) for t in templates
                         for n in NAMES),
                       *(_fill(t, NAMES[0], NAMES[0], NAMES[0], p, o) for t in templates
                         for p in PLACES for o in THINGS))
    space = len(templates) * len(NAMES) * (len(NAMES) - 1) * 2 * len(PLACES) * len(THINGS)
    return PromptTaskSpec(name=name, sample=sampler(templates), space=space, metric="logit_diff",
                          words=words, description=description)


PROMPT_TASK = spec("ioi", TEMPLATES, "indirect object identification, 12 templates")
