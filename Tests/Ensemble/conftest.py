"""Fixtures of the ensemble suite: the run's seed (SK_SEED replays it), printed in the header
and in every failing test's output."""

import os
import random

import pytest


def pytest_report_header(config):
    kind = os.environ.get("SK_SERVER", "swiftkeeper")
    rounds = os.environ.get("SK_ENSEMBLE_ROUNDS", "default")
    return [f"ensemble: server = {kind} (SK_SERVER), seed = {base_seed()} (SK_SEED), "
            f"rounds = {rounds} (SK_ENSEMBLE_ROUNDS)"]


_BASE_SEED = None


def base_seed():
    global _BASE_SEED
    if _BASE_SEED is None:
        env = os.environ.get("SK_SEED")
        _BASE_SEED = int(env) if env else random.SystemRandom().randrange(1 << 32)
    return _BASE_SEED


@pytest.fixture
def seed(request):
    """A per-test seed derived from the run's seed and the test's id; printed, so a failing
    test shows how to replay it."""
    value = (base_seed() * 1_000_003 + sum(map(ord, request.node.nodeid))) % (1 << 32)
    print(f"seed: SK_SEED={base_seed()} (test seed {value})")
    return value
