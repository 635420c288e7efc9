"""Fixtures of the certificate verifier's tests: node (required) and Debian's Chromium (the page's
tests skip, saying how to install it, when it is missing)."""

import shutil

import pytest

CHROMIUM_INSTALL = "apt-get install -y --no-install-recommends chromium"


def pytest_configure(config):
    config.addinivalue_line("markers", "chromium: drives tools/certificate-verifier/index.html in headless Chromium")


@pytest.fixture(scope="session")
def node():
    found = shutil.which("node")
    if found is None:
        pytest.fail("node not found in PATH: the certificate verifier's CLI runs on Node.js", pytrace=False)
    return found


@pytest.fixture(scope="session")
def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"Chromium is not installed, so the page is not tested: `{CHROMIUM_INSTALL}` (Debian)")
