"""The folders a run writes: writable, never the filesystem root, owned by one config."""
import json

import pytest

from benchmark.workflow.results_folder import (
    OWNER_FILE,
    check_owner,
    check_writable_folder,
    claim,
    config_names,
)


@pytest.mark.parametrize("path, says", [("", "is empty"), ("/", "the filesystem root"),
                                        ("//", "the filesystem root")])
def test_root_and_empty_folders_are_refused(path, says):
    with pytest.raises(ValueError, match=says) as err:
        check_writable_folder(path, "config results")
    assert "set config results to a writable folder" in str(err.value)


def test_an_unwritable_folder_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError) as err:  # as root no chmod stops a write; a file does
        check_writable_folder(str(blocker / "cache"), "config cache")
    assert f"config cache '{blocker}/cache' is not writable" in str(err.value)
    assert "set config cache to a writable folder" in str(err.value)


def test_a_writable_folder_is_made(tmp_path):
    check_writable_folder(str(tmp_path / "new" / "results"), "config results")
    assert (tmp_path / "new" / "results").is_dir()


def test_another_config_is_refused_unless_sharing_is_asked(tmp_path):
    results = str(tmp_path / "results")
    check_owner(results, ["config/a.yaml"], share=False)  # a new folder has no owner
    claim(results, ["config/a.yaml"])
    assert json.loads((tmp_path / "results" / OWNER_FILE).read_text()) == {
        "configs": ["config/a.yaml"]}
    check_owner(results, ["config/a.yaml"], share=False)  # its own config
    with pytest.raises(ValueError) as err:
        check_owner(results, ["config/b.yaml"], share=False)
    msg = str(err.value)
    assert "holds the results of config/a.yaml, not of config/b.yaml" in msg
    assert "results/b" in msg and "share_results: true" in msg
    check_owner(results, ["config/b.yaml"], share=True)
    claim(results, ["config/b.yaml"])
    check_owner(results, ["config/b.yaml"], share=False)  # recorded as an owner now


def test_config_names_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_names([str(tmp_path / "config/x.yaml"), "config/x.yaml"],
                        str(tmp_path)) == ["config/x.yaml"]
    assert config_names([], str(tmp_path)) == ["-"]
