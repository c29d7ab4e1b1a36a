"""router.cda_schema: CDA_extended.xsd validation and where the schema is found."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from router.cda_xml import parse_cda
from router import cda_schema
from router.cda_schema import CdaSchemaValidator, locate_schema_dir
from router.errors import ConfigError, ValidationError
from channels.testing.cda import make_cda
from tests.support.fixtures import FIXTURES, require_fixture

HL7 = "urn:hl7-org:v3"
SCHEMA_PARTS = ("TestContenuCDA-3-0", "infrastructure", "cda")
EXAMPLES = ("TestContenuCDA-3-0", "ExemplesCDA")


@pytest.fixture(scope="module")
def validator() -> CdaSchemaValidator:
    return CdaSchemaValidator(require_fixture(*SCHEMA_PARTS))


def _example_names() -> list[str]:
    directory = FIXTURES.joinpath(*EXAMPLES) if FIXTURES else None
    if directory is None or not directory.is_dir():
        return ["<fixtures absent>"]
    return sorted(p.name for p in directory.glob("*.xml"))


@pytest.mark.fixtures
@pytest.mark.parametrize("name", _example_names())
def test_accepts_each_ans_example(validator, name):
    validator.validate(require_fixture(*EXAMPLES, name).read_bytes())


@pytest.mark.fixtures
@pytest.mark.parametrize("kind", ["cr-bio", "ldl-ses"])
def test_accepts_the_demo_samples(validator, kind):
    validator.validate(make_cda(kind=kind))


@pytest.mark.fixtures
def test_accepts_the_demo_sample_files_as_written(validator):
    samples = Path(__file__).resolve().parents[2] / "channels" / "app" / "demo" / "samples" / "cda"
    files = sorted(samples.glob("*.xml"))
    assert len(files) == 2
    for path in files:
        validator.validate(path.read_bytes())


@pytest.mark.fixtures
def test_rejects_an_element_out_of_place_with_its_line(validator):
    with pytest.raises(ValidationError) as caught:
        validator.validate(make_cda(broken_schema=True))
    error = caught.value
    assert error.reason == "CDA does not conform to CDA_extended.xsd"
    assert error.details[0].startswith("line ")
    assert "unexpectedElement" in error.details[0]


@pytest.mark.fixtures
def test_rejects_a_wrong_datatype(validator):
    cda = make_cda().replace(b'<versionNumber value="1"/>', b'<versionNumber value="one"/>')
    with pytest.raises(ValidationError) as caught:
        validator.validate(cda)
    assert any("value" in d and "one" in d for d in caught.value.details)


@pytest.mark.fixtures
def test_error_details_are_capped(validator):
    doc = etree.fromstring(make_cda())
    for element in list(doc.iter(f"{{{HL7}}}templateId"))[:15]:
        element.set("bogus", "1")            # an attribute the schema does not declare: one error each
    with pytest.raises(ValidationError) as caught:
        validator.validate(etree.tostring(doc))
    details = caught.value.details
    assert len(details) == cda_schema.MAX_DETAILS + 1
    assert all(d.startswith("line ") for d in details[:-1])
    assert details[-1] == "... and 5 more"


@pytest.mark.fixtures
def test_validates_an_already_parsed_document(validator):
    validator.validate(parse_cda(make_cda()))
    with pytest.raises(ValidationError):
        validator.validate(parse_cda(make_cda(broken_schema=True)))


@pytest.mark.fixtures
def test_input_that_is_not_xml_is_a_validation_error(validator):
    with pytest.raises(ValidationError, match="not well-formed"):
        validator.validate(b"<ClinicalDocument")


@pytest.mark.fixtures
def test_the_schema_is_compiled_once_per_directory():
    directory = require_fixture(*SCHEMA_PARTS)
    assert CdaSchemaValidator(directory)._schema is CdaSchemaValidator(str(directory))._schema


def test_a_directory_without_the_schema_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="CDA_extended.xsd"):
        CdaSchemaValidator(tmp_path)


# --- locate_schema_dir ------------------------------------------------------------------------

def _schema_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "CDA_extended.xsd").write_text("<schema/>")
    return path


def test_locate_prefers_the_configured_directory(tmp_path):
    configured, from_env = _schema_dir(tmp_path / "configured"), _schema_dir(tmp_path / "env")
    assert locate_schema_dir(str(configured), env={"LIAISON_CDA_SCHEMA_DIR": str(from_env)}) == configured


def test_locate_uses_the_environment_when_nothing_is_configured(tmp_path):
    from_env = _schema_dir(tmp_path / "env")
    assert locate_schema_dir(None, env={"LIAISON_CDA_SCHEMA_DIR": str(from_env)}) == from_env


def test_locate_skips_a_configured_directory_without_the_schema(tmp_path):
    from_env = _schema_dir(tmp_path / "env")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert locate_schema_dir(str(empty), env={"LIAISON_CDA_SCHEMA_DIR": str(from_env)}) == from_env


@pytest.mark.fixtures
def test_locate_falls_back_to_the_shared_fixtures_next_to_the_repository():
    expected = require_fixture(*SCHEMA_PARTS).resolve()
    if expected != (Path(cda_schema.__file__).resolve().parents[2] / "shared" / "fixtures").joinpath(
            *SCHEMA_PARTS).resolve():
        pytest.skip("fixtures are not at ../shared/fixtures in this checkout")
    assert locate_schema_dir(None, env={}) == expected


def test_locate_finds_the_fixtures_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(cda_schema, "_FIXTURE_PARTS", ("shared", "fixtures", "elsewhere", "cda"))
    work = tmp_path / "work"
    work.mkdir()
    target = _schema_dir(tmp_path / "shared" / "fixtures" / "elsewhere" / "cda")
    monkeypatch.chdir(work)
    assert locate_schema_dir(None, env={}) == target.resolve()


def test_locate_returns_none_when_no_schema_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(cda_schema, "_FIXTURE_PARTS", ("shared", "fixtures", "no", "such", "dir"))
    monkeypatch.chdir(tmp_path)
    assert locate_schema_dir(None, env={}) is None
