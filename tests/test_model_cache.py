"""A model trained here is checked on every load against the manifest of hashes saved with it:
a damaged or edited file (weights, config, tokenizer, report) makes it train again, with one
warning line naming the folder and the file; a good cache is never retrained."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json
import shutil

import pytest

from benchmark.backends.lm import models as lm_models
from benchmark.backends.lm.spec import LMSpec
from benchmark.backends.lm.train import MANIFEST, file_hashes
from benchmark.core.registry import LM_MODELS

NAME = "test_cached"
QUIET = {"log": lambda *_: None}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A few-step model of one layer, trained once into a module cache: its folder."""
    LM_MODELS.register(LMSpec(name=NAME, family="gpt2", tasks=("greater_than",),
                              train_tasks=("greater_than",), steps=3, batch_size=8, n_layer=1,
                              d_model=16, n_head=2, min_accuracy=0.0,
                              min_corruption_kl=0.0))
    cache = tmp_path_factory.mktemp("model_cache")
    lm_models.train_model(NAME, cache, **QUIET)
    yield lm_models.model_dir(NAME, cache)
    LM_MODELS.reset()


@pytest.fixture
def cache(saved, tmp_path, monkeypatch):
    """A copy of the saved model's cache; `cache.trained` lists the trainings it sees."""
    path = lm_models.model_dir(NAME, tmp_path)
    shutil.copytree(saved, path)
    trained, original = [], lm_models.train_model
    monkeypatch.setattr(lm_models, "train_model",
                        lambda *a, **k: trained.append(a) or original(*a, **k, **QUIET))
    return type("Cache", (), {"root": tmp_path, "path": path, "trained": trained})


def test_the_manifest_covers_every_saved_file(saved):
    files = json.loads((saved / MANIFEST).read_text())["files"]
    assert {"model.safetensors", "config.json", "tokenizer.json", "report.json"} <= set(files)
    assert files == file_hashes(str(saved)) and MANIFEST not in files


def test_a_good_cache_is_loaded_and_never_retrained(cache, capsys):
    source, report = lm_models.model_source(NAME, cache.root)
    hf, tok, again = lm_models.load_model(NAME, cache.root)
    assert source == str(cache.path) and report == again and report["model"] == NAME
    assert hf.config.n_layer == 1 and len(tok) == hf.config.vocab_size
    assert cache.trained == [] and "warning" not in capsys.readouterr().err


def _edit_weights(path):
    """Valid safetensors with one weight changed: loads fine, computes something else."""
    from safetensors.torch import load_file, save_file
    weights = load_file(path / "model.safetensors")
    name = min(weights)
    weights[name] = weights[name] + 1.0
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})


DAMAGE = {
    "truncated": ("model.safetensors", lambda p: os.truncate(
        p / "model.safetensors", (p / "model.safetensors").stat().st_size // 2)),
    "edited": ("model.safetensors", _edit_weights),
    "deleted": ("tokenizer.json", lambda p: (p / "tokenizer.json").unlink()),
    "bad report": ("report.json", lambda p: (p / "report.json").write_text("{")),
    "extra file": ("adapter_config.json", lambda p: (p / "adapter_config.json").write_text("{}")),
    "no manifest": (MANIFEST, lambda p: (p / MANIFEST).unlink()),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_cache_is_retrained_with_one_warning(cache, capsys, damage):
    name, damage_it = DAMAGE[damage]
    expected = json.loads((cache.path / MANIFEST).read_text())["files"]
    damage_it(cache.path)
    source, report = lm_models.model_source(NAME, cache.root)
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and err[0].startswith("warning: model cache "), err
    assert str(cache.path) in err[0] and name in err[0] and "training it again" in err[0]
    assert len(cache.trained) == 1 and source == str(cache.path)
    # the seeded retraining saved whole again (atomically: no temporary folder left)
    assert lm_models.verified_report(cache.path) == report
    assert file_hashes(str(cache.path))["model.safetensors"] == expected["model.safetensors"]
    assert [p.name for p in cache.path.parent.iterdir()] == [cache.path.name]
    lm_models.model_source(NAME, cache.root)  # and is trusted from then on
    assert len(cache.trained) == 1 and "warning" not in capsys.readouterr().err
