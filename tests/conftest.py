"""Suite-wide pytest configuration: shared fixture plugins, a Redis database per test process (each
pytest-xdist worker and each forked process claims its own; the xdist controller, which runs no test,
gives back the one it claimed on import)."""

import pytest

from tests.support.services import claim_again_after_fork, release_controller_claim, release_forked_claim

pytest_plugins = ["tests.support.gc_pauses", "tests.support.clock", "tests.support.engine", "tests.support.backoffice",
                  "tests.support.throwaway_redis", "tests.support.fake_africastalking", "tests.support.fake_smtp"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-transcripts", action="store_true", default=False,
                     help="rewrite the expected screens of tests/transcripts/*.yaml from what the product shows")


def pytest_configure(config: pytest.Config) -> None:
    claim_again_after_fork()
    if _xdist_controller(config):
        release_controller_claim()


def _xdist_controller(config: pytest.Config) -> bool:
    """Whether this process hands the tests to pytest-xdist workers (``-n N``) and runs none itself."""
    workers = config.getoption("numprocesses", default=None)
    return bool(workers) and not hasattr(config, "workerinput")


def pytest_unconfigure(config: pytest.Config) -> None:
    release_forked_claim()
