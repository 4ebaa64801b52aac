"""Test settings for the chat tests: the ``slow`` marker (still run by ``make test``)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long real-process test (run by make test; "
                                       "deselect with -m 'not slow')")
