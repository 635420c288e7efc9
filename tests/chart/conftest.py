"""Fixtures of the offline chart tests: the helm binary and every example rendered once."""

import pytest

from chart_render import CHART, EXAMPLES, docs_of, find_helm, template


@pytest.fixture(scope="session")
def helm():
    found = find_helm()
    if found is None:
        pytest.fail(
            "helm not found in .deps/bin or PATH: run `make setup` "
            "(GOBIN=.deps/bin go install helm.sh/helm/v3/cmd/helm@v3.22.0)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def rendered(helm):
    """example name -> (text, documents), rendered now from the chart."""
    out = {}
    for name in EXAMPLES:
        result = template(helm, CHART / "examples" / name / "values.yaml")
        assert result.returncode == 0, f"example {name} does not render:\n{result.stderr}"
        out[name] = (result.stdout, docs_of(result.stdout))
    return out
