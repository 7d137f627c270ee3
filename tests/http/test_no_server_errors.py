"""No request a client can send may produce a 500 (SPEC §5): generated inputs against every endpoint."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.runtime import Runtime
from tests.oauth import App, Person, authorize_params, make_app, make_person

PARAMETERS = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "token",
    "token_type_hint",
    "access_token",
]
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
values = st.one_of(
    text,
    st.sampled_from(
        [
            "",
            "code",
            "S256",
            "plain",
            "openid",
            "none",
            "-1",
            "9" * 30,
            "authorization_code",
            "refresh_token",
            "client_credentials",
        ]
    ),
)
forms = st.dictionaries(st.sampled_from(PARAMETERS), values, max_size=8)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
async def setup(runtime: Runtime) -> tuple[App, Person]:
    return await make_app(runtime), await make_person(runtime)


@given(extra=forms)
@SETTINGS
async def test_authorize_never_500(
    http: httpx.AsyncClient, setup: tuple[App, Person], extra: dict[str, str]
) -> None:
    app, person = setup
    for params in (extra, authorize_params(app) | extra):
        response = await http.get("/oauth2/authorize", params=params, headers=person.headers)
        assert response.status_code < 500, (params, response.text)


@given(form=forms, use_basic=st.booleans())
@SETTINGS
async def test_token_revoke_introspect_never_500(
    http: httpx.AsyncClient, setup: tuple[App, Person], form: dict[str, str], use_basic: bool
) -> None:
    app, _ = setup
    auth = app.basic() if use_basic else None
    for path in ("/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"):
        response = await http.post(path, data=form, auth=auth)
        assert response.status_code < 500, (path, form, response.text)


@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from([*PARAMETERS, "approved", "remember", "granted_scopes"]),
            st.one_of(values, st.booleans(), st.integers(), st.lists(values, max_size=3)),
            max_size=10,
        ),
    )
)
@SETTINGS
async def test_consent_never_500(
    http: httpx.AsyncClient, setup: tuple[App, Person], body: bytes | dict[str, object]
) -> None:
    _, person = setup
    if isinstance(body, bytes):
        response = await http.post(
            "/oauth2/consent", content=body, headers=person.headers | {"Content-Type": "application/json"}
        )
    else:
        response = await http.post("/oauth2/consent", json=body, headers=person.headers)
    assert response.status_code < 500, (body, response.text)
    page = await http.get(
        "/consent",
        params={k: str(v) for k, v in body.items()} if isinstance(body, dict) else {},
        headers=person.headers,
    )
    assert page.status_code < 500


@given(token=text)
@SETTINGS
async def test_userinfo_never_500(http: httpx.AsyncClient, token: str) -> None:
    raw = b"Bearer " + token.replace("\r", "").replace("\n", "").encode("utf-8")  # non-ASCII bytes too
    response = await http.get("/oauth2/userinfo", headers={"Authorization": raw})
    assert response.status_code < 500


@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from(["password", "oauth2_context"]),
            st.one_of(
                values,
                st.integers(),
                st.none(),
                st.dictionaries(st.sampled_from(PARAMETERS), st.one_of(values, st.integers()), max_size=6),
            ),
            max_size=2,
        ),
    ),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
)
@SETTINGS
async def test_login_password_never_500(
    http: httpx.AsyncClient, setup: tuple[App, Person], body: bytes | dict[str, object], content_type: str
) -> None:
    """The endpoint reads its JSON body itself (it is on the hot path)."""
    _, person = setup
    started = await http.post("/api/v1/auth/submit-identifier", json={"identifier": person.email})
    headers = {"Authorization": f"Bearer {started.json()['flow_token']}"}
    if isinstance(body, bytes):
        response = await http.post(
            "/api/v1/auth/login-password", content=body, headers=headers | {"Content-Type": content_type}
        )
    else:
        response = await http.post("/api/v1/auth/login-password", json=body, headers=headers)
    assert response.status_code < 500, (body, response.text)
