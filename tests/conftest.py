"""Suite-wide pytest configuration: shared fixture plugins, a Redis database per forked test process."""

import pytest

from tests.support.services import claim_again_after_fork, release_forked_claim

pytest_plugins = ["tests.support.clock", "tests.support.engine", "tests.support.backoffice",
                  "tests.support.throwaway_redis", "tests.support.fake_africastalking", "tests.support.fake_smtp"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-transcripts", action="store_true", default=False,
                     help="rewrite the expected screens of tests/transcripts/*.yaml from what the product shows")


def pytest_configure(config: pytest.Config) -> None:
    claim_again_after_fork()


def pytest_unconfigure(config: pytest.Config) -> None:
    release_forked_claim()
