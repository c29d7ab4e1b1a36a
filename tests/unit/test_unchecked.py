"""What becomes of a document no volet schematron checks, and the two [engine] keys that say it."""

from __future__ import annotations

import pytest

from channels.app.settings import settings_from_dict
from router.errors import ConfigError
from router.unchecked import Outcome, UncheckedPolicy, unchecked_policy


def test_by_default_a_dmp_deposit_is_refused_and_a_mail_only_warned():
    policy = unchecked_policy({})
    assert policy == UncheckedPolicy(dmp=Outcome.REFUSE, mail=Outcome.WARN)
    assert policy.refused_by(to_dmp=True, to_mail=False) == "engine.unchecked_volet_dmp"
    assert policy.refused_by(to_dmp=True, to_mail=True) == "engine.unchecked_volet_dmp"
    assert policy.refused_by(to_dmp=False, to_mail=True) == ""


def test_a_rendered_document_is_only_warned_about():
    assert UncheckedPolicy().refused_by(to_dmp=True, to_mail=True, rendered=True) == ""


def test_each_destination_can_be_set_either_way():
    policy = unchecked_policy({"unchecked_volet_dmp": "warn", "unchecked_volet_mail": "refuse"})
    assert policy.refused_by(to_dmp=True, to_mail=False) == ""
    assert policy.refused_by(to_dmp=True, to_mail=True) == "engine.unchecked_volet_mail"


def test_a_wrong_value_names_the_key():
    with pytest.raises(ConfigError, match="engine.unchecked_volet_mail: expected \"refuse\" or \"warn\""):
        unchecked_policy({"unchecked_volet_mail": "ignore"})


def test_the_engine_section_takes_the_keys():
    settings = settings_from_dict({"engine": {"unchecked_volet_dmp": "warn"}}, env={})
    assert settings.unchecked_volet == UncheckedPolicy(dmp=Outcome.WARN, mail=Outcome.WARN)
    assert settings_from_dict({}, env={}).unchecked_volet == UncheckedPolicy()
