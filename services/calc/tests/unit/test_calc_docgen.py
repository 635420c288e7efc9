"""docs/methodologies.md is generated from the methodology files and must be current."""

from pathlib import Path

from calc.cli.docgen import render

DOC = Path(__file__).resolve().parents[4] / "docs" / "methodologies.md"


def test_committed_methodology_doc_is_up_to_date(catalog):
    assert DOC.read_text(encoding="utf-8") == render(catalog), (
        "docs/methodologies.md is stale: run `python -m calc.cli.docgen > docs/methodologies.md`"
    )


def test_doc_has_one_section_per_scenario_with_sources_and_caps(catalog):
    text = render(catalog)
    for m in catalog.methodologies:
        section = text.split(f"### `{m.id}` v{m.version}")[1].split("###")[0]
        assert m.document["source"].split()[0] in section
        assert ("| Cap |" in section) == bool(m.caps)
        for name, p in m.document["parameters"].items():
            assert f"`{name}` | {p['value']} {p['unit']}" in section
