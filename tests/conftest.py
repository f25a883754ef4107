"""Suite-wide pytest configuration: shared fixture plugins."""

pytest_plugins = ["tests.support.clock", "tests.support.engine", "tests.support.backoffice",
                  "tests.support.throwaway_redis"]


def pytest_addoption(parser):  # type: ignore[no-untyped-def]
    parser.addoption("--update-transcripts", action="store_true", default=False,
                     help="rewrite the expected screens of tests/transcripts/*.yaml from what the product shows")
