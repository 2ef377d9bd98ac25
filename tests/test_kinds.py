"""Model kinds as units: every model directory an earlier release wrote still loads and
composes the same bytes, and training today gives the weights that release's training gave."""

from __future__ import annotations

import json

import pytest

from conftest import FIXTURES, assert_same_weights, saved_weights

COMPOSE = json.loads((FIXTURES / "compose.json").read_text())  # kind -> compose options


@pytest.mark.parametrize("kind", sorted(COMPOSE))
def test_a_model_directory_of_an_earlier_release_composes_the_same_bytes(cli, kind, tmp_path):
    for i, options in enumerate(COMPOSE[kind], 1):
        result = cli("compose", "--model", FIXTURES / kind, "--random-seed", "1", *options,
                     "-o", "tune.mid")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert result.stdout == (FIXTURES / f"{kind}-{i}.txt").read_text(), (kind, options)
        assert (tmp_path / "tune.mid").read_bytes() == (FIXTURES / f"{kind}-{i}.mid").read_bytes()


@pytest.mark.parametrize("kind", ["mlp", "lstm", "stateful", "stateful-features"])
def test_the_chapters_kinds_train_the_weights_an_earlier_release_trained(trained_models, kind):
    """The session's models are trained as the fixtures were: compare nabiya, 3 epochs, 8
    units, seed 5."""
    assert_same_weights(saved_weights(trained_models[kind]), saved_weights(FIXTURES / kind))
    mine = json.loads((trained_models[kind] / "melodygen.json").read_text())
    theirs = json.loads((FIXTURES / kind / "melodygen.json").read_text())
    assert mine["vocabulary"] == theirs["vocabulary"]
