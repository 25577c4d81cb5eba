"""Repository-wide pytest set-up (tests/ and the package's doctests)."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Derived files (the converted universal vocoder) go to a cache of this test session,
    never to the user's ~/.cache/adavoice."""
    patch = pytest.MonkeyPatch()
    patch.setenv("ADAVOICE_CACHE", str(tmp_path_factory.mktemp("adavoice-cache")))
    yield
    patch.undo()
