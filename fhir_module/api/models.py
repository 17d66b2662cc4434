"""Pydantic models of the CDS Hooks 2.0 wire format.

They serve two purposes: validating what clients send (requests, feedback) and documenting every
body in /openapi.json. Responses produced by the engine are documented by these models but sent as
the engine built them (the engine owns their content).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NonEmpty = Field(min_length=1)


class _Open(BaseModel):
    """Unknown members are kept: CDS Hooks reserves `extension` and clients add their own."""

    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Coding(_Open):
    system: str = NonEmpty
    code: str = NonEmpty
    display: str | None = None


# --- discovery ---------------------------------------------------------------------------------


class CdsServiceDescriptor(_Open):
    hook: str
    id: str
    title: str | None = None
    description: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class DiscoveryResponse(_Open):
    services: list[CdsServiceDescriptor]


# --- service call ------------------------------------------------------------------------------


class FhirAuthorization(_Open):
    access_token: str = NonEmpty
    token_type: Literal["Bearer"]
    expires_in: int = Field(ge=0)
    scope: str = NonEmpty

    @field_validator("access_token")
    @classmethod
    def _fits_a_header(cls, token: str) -> str:
        # It goes into an Authorization header: a non-ASCII token was once a 500 (it cannot be
        # encoded), one with CR/LF a failed fetch counted against a healthy FHIR server.
        if not all("!" <= c <= "~" for c in token):
            raise ValueError("must be visible ASCII without spaces (an RFC 6750 bearer token)")
        return token
    subject: str = NonEmpty
    patient: str | None = None


class FhirResource(_Open):
    """Any FHIR resource (JSON): only `resourceType` is checked here, the engine reads the rest."""

    resourceType: str = Field(min_length=1, pattern=r"^[A-Z][A-Za-z]+$")


class CdsServiceRequest(_Open):
    """The body a CDS client POSTs to `/cds-services/{id}`."""

    hook: str = NonEmpty
    hookInstance: str = NonEmpty
    fhirServer: str | None = Field(default=None, min_length=1)
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, FhirResource | None] | None = Field(
        default=None,
        description="Prefetch key -> FHIR resource or searchset Bundle; null when the client has no data",
    )
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_with_authorization(self) -> "CdsServiceRequest":
        if self.fhirAuthorization is not None and self.fhirServer is None:
            raise ValueError("fhirServer is required when fhirAuthorization is given")
        return self


class Link(_Open):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None
    autolaunchable: bool | None = None


class Source(_Open):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(_Open):
    type: Literal["create", "update", "delete"]
    description: str | None = None
    resource: dict[str, Any] | None = None
    resourceId: str | None = None


class Suggestion(_Open):
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None
    actionSelectionBehavior: Literal["all", "any", "at-most-one"] | None = None


class Card(_Open):
    uuid: str | None = None
    summary: str = Field(max_length=140)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None


class CdsServiceResponse(_Open):
    cards: list[Card]
    systemActions: list[Action] | None = None


# --- feedback ----------------------------------------------------------------------------------


class AcceptedSuggestion(_Open):
    id: str = NonEmpty


class OverrideReason(_Open):
    reason: Coding | None = None
    userComment: str | None = None

    @model_validator(mode="after")
    def _something_given(self) -> "OverrideReason":
        if self.reason is None and not self.userComment:
            raise ValueError("overrideReason needs a reason Coding or a userComment")
        return self


class FeedbackItem(_Open):
    card: str = NonEmpty
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime

    @field_validator("outcomeTimestamp", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        # Only strings: pydantic would otherwise take a number as seconds since the epoch.
        if not isinstance(value, str):
            raise ValueError("outcomeTimestamp must be an RFC 3339 date-time string")
        return value

    @field_validator("outcomeTimestamp")
    @classmethod
    def _with_zone(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("outcomeTimestamp must carry a time zone (UTC, e.g. ...Z)")
        try:  # stored in UTC: 0001-01-01T00:00:00+14:00 has no UTC instant a datetime can hold
            value.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("outcomeTimestamp is outside the range of representable instants") from None
        return value

    @model_validator(mode="after")
    def _outcome_consistent(self) -> "FeedbackItem":
        if self.outcome == "accepted":
            if not self.acceptedSuggestions:
                raise ValueError("acceptedSuggestions is required for an accepted outcome")
            if self.overrideReason is not None:
                raise ValueError("overrideReason is only for an overridden outcome")
        elif self.acceptedSuggestions:
            raise ValueError("acceptedSuggestions is only for an accepted outcome")
        return self


class FeedbackRequest(_Open):
    feedback: list[FeedbackItem] = Field(min_length=1)


class FeedbackResponse(_Closed):
    stored: int = Field(description="feedback items stored (committed) by this call")
    alreadyStored: int = Field(description="items whose card and outcome were stored before (a resend): "
                                           "acknowledged, not stored twice")


# --- errors and health -------------------------------------------------------------------------


class OperationOutcomeIssue(_Open):
    severity: Literal["fatal", "error", "warning", "information"]
    code: str
    diagnostics: str | None = None
    expression: list[str] | None = None


class OperationOutcome(_Open):
    resourceType: Literal["OperationOutcome"]
    issue: list[OperationOutcomeIssue]


class Health(_Closed):
    status: Literal["ok"]
    services: int
    auth: bool
    evaluationFailures: int = Field(  # noqa: N815 - the JSON name
        0, description="checks that could not be evaluated on a request's data since the service started "
                       "(each said on the cards of its request)")


class Readiness(_Closed):
    status: Literal["ready", "degraded", "not ready"] = Field(
        description="ready; degraded (a FHIR server is slow or failing: its requests get 412); not ready "
        "(503: the database is down or a fetch lane is stuck)")
    checks: dict[str, Any] = Field(
        description="knowledge, database ({status: ok|down, kind, problem}) and fhirServers (per base URL: "
        "{status: ok|busy|failing|stuck, inFlight, waiting, concurrency, consecutiveFailures, lastProblem})")
