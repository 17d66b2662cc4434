"""The self-test's EHR fills prefetch templates from templates split once (`_template_parts`); it
must give what replacing each token match by match gives (the way it was: `_TOKEN.sub`), errors
and their messages included."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fhir_module.engine import Engine
from fhir_module.selftest import ehr
from fhir_module.selftest.cases import ScenarioError, shift_date
from tests.support.scenarios import build_context, load_scenario, render_template

TODAY = date(2026, 11, 26)


def render_by_sub(template: str, context: dict[str, Any], today: date) -> str:
    """`render_template` as it was: a replacement for each match of `_TOKEN`."""
    user_type, _, user_ref_id = str(context.get("userId", "")).partition("/")

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("context."):
            value = context.get(token[len("context."):])
            if not isinstance(value, str):
                raise ScenarioError(f"prefetch token {{{{{token}}}}} has no string value in the context")
            return value
        if token.startswith("user") and token.endswith("Id") and token != "userId":
            if token[len("user"):-len("Id")] == user_type:
                return user_ref_id
            raise ScenarioError(f"prefetch token {{{{{token}}}}} does not match userId {context.get('userId')!r}")
        if today_match := ehr._TODAY_TOKEN.match(token):
            sign, amount, unit = today_match.groups()
            return (shift_date(today, sign, int(amount), unit) if sign else today).isoformat()
        raise ScenarioError(f"unknown prefetch token {{{{{token}}}}}")

    return ehr._TOKEN.sub(replace, template)


def outcome(render: Any, template: str, context: dict[str, Any]) -> Any:
    try:
        return render(template, context, TODAY)
    except ScenarioError as error:
        return "ScenarioError", str(error)


def test_every_template_with_every_case_context_renders_as_before() -> None:
    from fhir_module.knowledge import builtin_module_dirs, case_files

    templates = {template for service in Engine.default().services() for template in service["prefetch"].values()}
    contexts = [build_context(load_scenario(path, TODAY)) for module in builtin_module_dirs()
                for path in case_files(module)]
    assert len(templates) > 3 and len(contexts) > 300
    for template in templates:
        for context in contexts:
            assert render_template(template, context, TODAY) == render_by_sub(template, context, TODAY)


_PIECES = st.sampled_from(["Patient?", "_id=", "&", "{{", "}}", " ", "context.patientId", "context.userId",
                           "context.none", "userPractitionerId", "userPatientId", "userId", "today", "today - 3 days",
                           "today()+2w", "{", "}", "x", "{{context.patientId}}", "{{ today - 1 y }}"])


@given(st.lists(_PIECES, max_size=12).map("".join),
       st.sampled_from(["Practitioner/p1", "Patient/p2", "nobody", ""]))
def test_any_template_renders_as_before(template: str, user: str) -> None:
    context = {"patientId": "pat-1", "userId": user, "number": 3}
    assert outcome(render_template, template, context) == outcome(render_by_sub, template, context)
