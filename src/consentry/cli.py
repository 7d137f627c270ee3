"""The ``consentry`` command line (SPEC §1)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console

from consentry.crypto.keys import JWKS_MAX_AGE
from consentry.domain.accounts import BulkAction
from consentry.domain.clients import InvalidClientMetadata, build_client_metadata
from consentry.domain.identifiers import InvalidIdentifier
from consentry.domain.scopes import InvalidScopeToken, Scopes
from consentry.errors import ConfigurationError, ConsentryError
from consentry.runtime import Runtime, tune_collector_for_long_run, utcnow
from consentry.services.scopes import ScopeSpec
from consentry.settings import get_settings
from consentry.storage.migrate import upgrade_to_head
from consentry.storage.pseudonyms import SectorPin
from consentry.storage.resources import CatalogueRepository

T = TypeVar("T")

app = typer.Typer(
    name="consentry",
    help="Consentry: an OAuth 2.0 / OpenID Connect provider built around the user's consent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
client_app = typer.Typer(help="Register and manage OAuth clients.", no_args_is_help=True)
user_app = typer.Typer(help="Create and manage user accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage the ID token signing keys.", no_args_is_help=True)
users_app = typer.Typer(help="Act on many accounts at once.", no_args_is_help=True)
pseudonyms_app = typer.Typer(
    help="Manage pairwise pseudonym versions (OIDC Core §8.1).", no_args_is_help=True
)
app.add_typer(client_app, name="client")
app.add_typer(user_app, name="user")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(pseudonyms_app, name="pseudonyms")
resource_app = typer.Typer(help="Register the APIs tokens are issued for (RFC 8707).", no_args_is_help=True)
scope_app = typer.Typer(help="Define custom scopes.", no_args_is_help=True)
app.add_typer(resource_app, name="resource")
app.add_typer(scope_app, name="scope")
upstream_app = typer.Typer(help="Identity providers people may sign in with.", no_args_is_help=True)
app.add_typer(upstream_app, name="upstream")
dcr_app = typer.Typer(help="Clients that register themselves (RFC 7591).", no_args_is_help=True)
dcr_token_app = typer.Typer(help="Initial access tokens (CONSENTRY_DCR=token).", no_args_is_help=True)
dcr_app.add_typer(dcr_token_app, name="token")
app.add_typer(dcr_app, name="dcr")

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def fail(message: str, code: int = 2) -> typer.Exit:
    """One clear line on stderr and a non-zero exit: never a traceback for a user's mistake."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


def run(job: Callable[[Runtime], Awaitable[T]], *, migrate: bool = False) -> T:
    """Build the runtime, check the database is reachable (and migrate), run ``job``, close everything."""

    async def _main() -> T:
        runtime = Runtime.build(get_settings())
        try:
            await runtime.database.check_reachable()
            if migrate:
                await upgrade_to_head(runtime.database)
            return await job(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(_main())
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    except ConsentryError as exc:
        raise fail(exc.description or exc.error, 1) from None
    except (InvalidClientMetadata, InvalidIdentifier, InvalidScopeToken) as exc:
        raise fail(str(exc), 1) from None


def print_json(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Proxies whose X-Forwarded-For is trusted (addresses or networks, comma-separated, or *); "
            "default CONSENTRY_FORWARDED_ALLOW_IPS, else none."
        ),
    ] = None,
    no_jobs: Annotated[
        bool,
        typer.Option(
            "--no-jobs",
            help="Serve the API only; `consentry worker` runs the background jobs (CONSENTRY_RUN_JOBS=0).",
        ),
    ] = False,
) -> None:
    """Run the whole provider: HTTP API, pages and background work. Applies migrations first."""
    import uvicorn

    from consentry.http.app import proxy_options
    from consentry.http.protocol import ResponseCoalescingProtocol
    from consentry.logs import configure_logging
    from consentry.process_memory import cap_malloc_arenas

    cap_malloc_arenas()  # before any thread starts; MALLOC_ARENA_MAX, if set, wins

    if forwarded_allow_ips is not None:  # the app's processes read their settings from the environment
        os.environ["CONSENTRY_FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    if no_jobs:
        os.environ["CONSENTRY_RUN_JOBS"] = "0"
    get_settings.cache_clear()
    settings = get_settings()
    configure_logging(json_logs=not settings.is_development, level=settings.log_level)

    async def _prepare(_runtime: Runtime) -> None:
        return None

    run(_prepare, migrate=True)
    out.print(f"Consentry is serving at [bold]http://{host}:{port}[/] (issuer {settings.issuer})")
    uvicorn.run(
        "consentry.http.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=ResponseCoalescingProtocol,
        log_config=None,
        access_log=False,
        server_header=False,
        **proxy_options(settings),
    )


@app.command()
def worker(
    host: Annotated[str, typer.Option(help="Interface for --port.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Serve /healthz, /readyz and /metrics on this port (default: none).")
    ] = None,
) -> None:
    """Run background jobs only (webhook delivery, the registration queue, cleanup), for deployments that run
    API and workers apart."""
    import signal

    import uvicorn

    from consentry.http.worker_app import create_worker_app
    from consentry.jobs.worker import Worker
    from consentry.logs import configure_logging

    settings = get_settings()
    configure_logging(json_logs=not settings.is_development, level=settings.log_level)

    async def _work(runtime: Runtime) -> None:
        runtime.changes.start()  # the clients it delivers to, as the API nodes change them
        background = Worker(runtime)
        tune_collector_for_long_run()
        server = None
        if port is not None:
            config = uvicorn.Config(
                create_worker_app(runtime), host=host, port=port, log_config=None, access_log=False,
                lifespan="off", server_header=False,
            )  # fmt: skip
            # While serving, uvicorn takes SIGINT/SIGTERM itself, then hands them to the handlers below.
            server = uvicorn.Server(config)

        def stop() -> None:
            background.stop()
            if server is not None:
                server.should_exit = True

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        if server is None:
            await background.run()
        else:
            await asyncio.gather(background.run(), server.serve())

    run(_work, migrate=True)


@app.command()
def cleanup(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; change nothing.")] = False,
) -> None:
    """Purge expired codes, tokens, sessions and flows, and mark expired consents, in bounded batches."""
    from rich.progress import Progress, SpinnerColumn, TextColumn
    from rich.table import Table

    from consentry.jobs.cleanup import CleanupReport, run_cleanup

    async def _clean(runtime: Runtime) -> CleanupReport:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True) as bar:
            task = bar.add_task("cleaning up", total=None)
            done: dict[str, int] = {}

            def advance(name: str, rows: int) -> None:
                done[name] = done.get(name, 0) + rows
                bar.update(task, description=f"{name}: {done[name]:,} rows")

            return await run_cleanup(runtime, now=utcnow(), dry_run=dry_run, progress=advance)

    report = run(_clean, migrate=True)
    table = Table(title="would be cleaned (dry run)" if dry_run else "cleaned")
    table.add_column("what")
    table.add_column("rows", justify="right")
    for name, count in report.counts.items():
        table.add_row(name, f"{count:,}")
    out.print(table)


@app.command()
def migrate() -> None:
    """Apply the database migrations to CONSENTRY_DATABASE_URL."""

    async def _done(runtime: Runtime) -> str:
        from consentry.storage.migrate import current_revision

        return await current_revision(runtime.database) or "none"

    revision = run(_done, migrate=True)
    out.print(f"database is at revision {revision}")


@client_app.command("create")
def client_create(
    name: Annotated[str, typer.Option("--name", help="Name shown to people on the consent screen.")],
    redirect_uri: Annotated[
        list[str], typer.Option("--redirect-uri", help="Allowed redirect URI (repeat for several).")
    ],
    scope: Annotated[str, typer.Option(help="Scopes the client may ask for.")] = "openid profile email",
    public: Annotated[
        bool, typer.Option("--public", help="A public client (no secret; PKCE required).")
    ] = False,
    trusted: Annotated[
        bool, typer.Option("--trusted", help="First-party client: skips the consent screen.")
    ] = False,
    grant_type: Annotated[
        list[str] | None,
        typer.Option(
            "--grant-type", help="authorization_code, refresh_token, client_credentials (repeatable)."
        ),
    ] = None,
    subject_type: Annotated[
        str, typer.Option(help="public, or pairwise for per-sector pseudonyms.")
    ] = "public",
    webhook_url: Annotated[str | None, typer.Option(help="Where consent change events are POSTed.")] = None,
    consent_ttl_days: Annotated[int | None, typer.Option(help="How long a remembered consent lasts.")] = None,
    policy_version: Annotated[
        str | None, typer.Option(help="Version of the client's privacy policy.")
    ] = None,
    id_token_alg: Annotated[
        str, typer.Option(help="How its ID tokens are signed: RS256, or ES256 (smaller, cheaper to sign).")
    ] = "RS256",
    token_endpoint_auth_method: Annotated[
        str | None,
        typer.Option(
            help="client_secret_basic or client_secret_post: the only way it may then authenticate "
            "(without it, either). --public clients use none."
        ),
    ] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None,
        typer.Option(help="Where RP-initiated logout may send the browser back to (repeatable)."),
    ] = None,
    backchannel_logout_uri: Annotated[
        str | None, typer.Option(help="Where a logout token is POSTed when a person's session ends.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Register a client; prints client_id and, for confidential clients, client_secret (shown once)."""
    from consentry.services.client_registration import register_client

    async def _create(runtime: Runtime) -> dict[str, Any]:
        async with runtime.database.unit_of_work() as session:
            metadata = build_client_metadata(
                name=name,
                redirect_uris=redirect_uri,
                scopes=Scopes.parse(scope),
                known_scopes=frozenset((await CatalogueRepository(session).catalogue()).scopes),
                grant_types=grant_type,
                token_endpoint_auth_method="none"
                if public
                else token_endpoint_auth_method or "client_secret_basic",
                auth_method_fixed=public or token_endpoint_auth_method is not None,
                subject_type=subject_type,
                webhook_url=webhook_url,
                trusted=trusted,
                consent_ttl_days=consent_ttl_days,
                policy_version=policy_version,
                id_token_signed_response_alg=id_token_alg,
                allow_private_webhooks=runtime.settings.webhook_allow_private
                or runtime.settings.issuer_is_loopback,
                issuer_on_loopback=runtime.settings.issuer_is_loopback,
                post_logout_redirect_uris=post_logout_redirect_uri or [],
                backchannel_logout_uri=backchannel_logout_uri,
            )
            issued = await register_client(
                session,
                metadata,
                secret_hasher=runtime.secret_hasher,
                secret_box=runtime.secret_box,
                now=utcnow(),
            )
        result: dict[str, Any] = {"client_id": issued.client_id}
        if issued.client_secret:
            result["client_secret"] = issued.client_secret
        if issued.webhook_secret:
            result["webhook_secret"] = issued.webhook_secret
        return result

    result = run(_create, migrate=True)
    if as_json:
        print_json(result)
        return
    for key, value in result.items():
        out.print(f"{key}: [bold]{value}[/]")
    if "client_secret" in result:
        out.print("[yellow]The secret is shown once; store it now.[/]")


def _scope_spec(value: str) -> ScopeSpec:
    name, sep, description = value.partition("=")
    if not sep or not name or not description:
        raise fail(f"--scope takes NAME=DESCRIPTION, not {value!r}")
    return ScopeSpec(name.strip(), description.strip())


@resource_app.command("create")
def resource_create(
    identifier: Annotated[str, typer.Option("--identifier", help="The API's absolute URI (RFC 8707).")],
    name: Annotated[str, typer.Option("--name", help="Its name, as the consent screen shows it.")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="A scope of this API, NAME=DESCRIPTION (repeatable)."),
    ] = None,
    token_format: Annotated[
        str, typer.Option(help="opaque (the API introspects) or jwt (RFC 9068, validated locally).")
    ] = "opaque",
    access_token_ttl: Annotated[
        int | None, typer.Option(help="Access token lifetime for this API, in seconds.")
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="Where revoked tokens (tokens.revoked) are POSTed.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Register an API; prints resource_id and the credentials it introspects with (the secret once)."""
    from consentry.services.resources import create_resource

    specs = [_scope_spec(value) for value in scope or []]

    async def _create(runtime: Runtime) -> dict[str, Any]:
        issued = await create_resource(
            runtime,
            identifier=identifier,
            name=name,
            scopes=specs,
            token_format=token_format,
            access_token_ttl=access_token_ttl,
            webhook_url=webhook_url,
            actor="cli",
            now=utcnow(),
        )
        return issued.as_json()

    result = run(_create, migrate=True)
    if as_json:
        print_json(result)
        return
    for key in ("resource_id", "identifier", "client_id", "client_secret", "webhook_secret"):
        if key in result:
            out.print(f"{key}: [bold]{result[key]}[/]")
    out.print("[yellow]The secrets are shown once; store them now.[/]")


@scope_app.command("create")
def scope_create(
    name: Annotated[str, typer.Argument(help="The scope token, e.g. photos:read.")],
    description: Annotated[
        str, typer.Option("--description", help="What the consent screen says it allows.")
    ],
    resource: Annotated[
        str | None, typer.Option("--resource", help="The identifier of the API it belongs to.")
    ] = None,
    restricted: Annotated[
        bool, typer.Option("--restricted", help="Only trusted clients may be granted it, and only to admins.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Define a custom scope (of an API, or of none)."""
    from consentry.services.scopes import create_scope

    async def _create(runtime: Runtime) -> dict[str, Any]:
        spec = ScopeSpec(name, description, restricted)
        return await create_scope(runtime, spec, resource=resource, actor="cli", now=utcnow())

    result = run(_create, migrate=True)
    if as_json:
        print_json(result)
        return
    owner = f" of {result['resource']}" if result["resource"] else ""
    out.print(f"scope [bold]{result['name']}[/]{owner} created")


@upstream_app.command("create")
def upstream_create(
    name: Annotated[str, typer.Option("--name", help="Its name in URLs: /auth/upstream/NAME/… .")],
    client_id: Annotated[str, typer.Option("--client-id", help="Consentry's client id at the provider.")],
    client_secret: Annotated[
        str, typer.Option("--client-secret", help="Consentry's client secret there (kept encrypted).")
    ],
    issuer: Annotated[
        str | None,
        typer.Option("--issuer", help="An OpenID provider's issuer (its discovery document is read)."),
    ] = None,
    kind: Annotated[
        str, typer.Option("--kind", help="oidc (default) or oauth2 (a GitHub-style provider).")
    ] = "oidc",
    display_name: Annotated[
        str | None, typer.Option("--display-name", help='Shown as "Continue with …".')
    ] = None,
    scope: Annotated[
        str | None, typer.Option("--scope", help='Asked of the provider ("openid email profile").')
    ] = None,
    trust_email: Annotated[
        bool,
        typer.Option(
            "--trust-email",
            help="Link an existing account by an email the provider says it verified (email_verified: true).",
        ),
    ] = False,
    authorize_url: Annotated[
        str | None, typer.Option("--authorize-url", help="oauth2: authorization URL.")
    ] = None,
    token_url: Annotated[str | None, typer.Option("--token-url", help="oauth2: token URL.")] = None,
    userinfo_url: Annotated[
        str | None, typer.Option("--userinfo-url", help="oauth2: the person's record, with the token.")
    ] = None,
    emails_url: Annotated[
        str | None,
        typer.Option("--emails-url", help="oauth2: a list of the person's verified emails (GitHub's)."),
    ] = None,
    uid_field: Annotated[
        str | None, typer.Option("--uid-field", help="oauth2: the record's id field (id).")
    ] = None,
    email_field: Annotated[
        str | None, typer.Option("--email-field", help="The record's email field (email).")
    ] = None,
    icon: Annotated[str | None, typer.Option("--icon", help="An icon URL for the button.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Add an upstream identity provider: people may then sign in with their account there."""
    from consentry.domain.upstreams import UpstreamKind
    from consentry.services.upstream_providers import UpstreamSpec, create_upstream

    if kind not in ("oidc", "oauth2"):
        raise fail("--kind must be oidc or oauth2")
    spec = UpstreamSpec(
        name=name, client_id=client_id, client_secret=client_secret, kind=UpstreamKind(kind), issuer=issuer,
        display_name=display_name, scope=scope, trust_email=trust_email, authorize_url=authorize_url,
        token_url=token_url, userinfo_url=userinfo_url, emails_url=emails_url, uid_field=uid_field,
        email_field=email_field, icon=icon,
    )  # fmt: skip

    async def _create(runtime: Runtime) -> dict[str, Any]:
        return await create_upstream(runtime, spec, actor="cli", now=utcnow())

    result = run(_create, migrate=True)
    if as_json:
        print_json(result)
        return
    out.print(f"upstream [bold]{result['name']}[/] ({result['kind']}) created")
    out.print(
        f"its redirect URI at the provider: {get_settings().issuer}/auth/upstream/{result['name']}/callback"
    )


@upstream_app.command("list")
def upstream_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The upstream providers, and whether each is offered."""
    from consentry.services.upstream_providers import list_upstreams

    listed = run(list_upstreams, migrate=True)
    if as_json:
        print_json({"upstreams": listed})
        return
    for provider in listed:
        state = "" if provider["enabled"] else " (disabled)"
        out.print(
            f"[bold]{provider['name']}[/] {provider['kind']}"
            f" {provider['issuer'] or provider['authorize_url']}{state}"
        )


@upstream_app.command("delete")
def upstream_delete(name: Annotated[str, typer.Argument(help="The provider's name.")]) -> None:
    """Remove a provider and every account linked to it (people sign in another way)."""
    from consentry.services.upstream_providers import delete_upstream

    async def _delete(runtime: Runtime) -> None:
        await delete_upstream(runtime, name, actor="cli", now=utcnow())

    run(_delete, migrate=True)
    out.print(f"upstream [bold]{name}[/] deleted")


@dcr_token_app.command("create")
def dcr_token_create(
    uses: Annotated[
        int | None, typer.Option("--uses", min=1, help="How many registrations it allows (default: any).")
    ] = None,
    expires_in: Annotated[
        int | None, typer.Option("--expires-in", min=1, help="Seconds it stays good (default: forever).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """An initial access token: software sends it as Bearer to POST /oauth2/register. Shown once."""
    from consentry.services.self_registration import IssuedInitialAccessToken, create_initial_access_token

    async def _create(runtime: Runtime) -> IssuedInitialAccessToken:
        return await create_initial_access_token(runtime, uses=uses, expires_in=expires_in, now=utcnow())

    issued = run(_create, migrate=True)
    if get_settings().dcr != "token":
        err.print("note: POST /oauth2/register asks for it only with CONSENTRY_DCR=token", soft_wrap=True)
    result = {
        "initial_access_token": issued.token,
        "id": issued.id,
        "uses": issued.uses,
        "expires_at": issued.expires_at.isoformat() if issued.expires_at else None,
    }
    if as_json:
        print_json(result)
        return
    out.print(f"initial access token (shown once): [bold]{issued.token}[/]")
    limits = [
        f"{uses} registration(s)" if uses else "",
        f"until {result['expires_at']}" if expires_in else "",
    ]
    if any(limits):
        out.print("good for " + ", ".join(limit for limit in limits if limit))


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option("--email", help="The account's email address.")],
    password: Annotated[
        str | None,
        typer.Option("--password", help="The initial password (at least 8 characters); else asked for."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    verified: Annotated[bool, typer.Option("--verified", help="Mark the email as verified.")] = False,
    admin: Annotated[bool, typer.Option("--admin", help="Grant the admin role.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Create a user account. The password comes from --password, --password-stdin, or a prompt (so that it
    need not stand in the shell's history or the process list)."""
    from consentry.services.users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)

    async def _create(runtime: Runtime) -> str:
        async with runtime.database.unit_of_work() as session:
            user = await create_user(
                session,
                passwords=runtime.passwords,
                now=utcnow(),
                email=email,
                password=password,
                verified=verified,
                admin=admin,
            )
            return str(user.id)

    user_id = run(_create, migrate=True)
    if as_json:
        print_json({"user_id": user_id})
    else:
        out.print(f"user_id: [bold]{user_id}[/]")


@user_app.command("list")
def user_list(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="How many to skip.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Accounts, deleted ones included, newest first."""
    from consentry.services.admin import list_users

    async def _list(runtime: Runtime) -> list[dict[str, Any]]:
        return await list_users(runtime, limit=limit, offset=offset)

    users = run(_list, migrate=True)
    if as_json:
        print_json({"users": users})
        return
    for user in users:
        state = "" if user["status"] == "active" else f" ({user['status']})"
        out.print(f"{user['user_id']}  {user.get('email') or user.get('phone') or '-'}{state}")


@user_app.command("show")
def user_show(user_id: Annotated[str, typer.Argument(help="The account's id.")]) -> None:
    """One account as an administrator sees it: profile, state, sessions, apps, linked accounts (JSON)."""
    from consentry.services.admin import user_overview

    async def _show(runtime: Runtime) -> dict[str, Any]:
        return await user_overview(runtime, _user_id(user_id), now=utcnow())

    print_json(run(_show, migrate=True))


@user_app.command("update")
def user_update(
    user_id: Annotated[str, typer.Argument(help="The account's id.")],
    name: Annotated[str | None, typer.Option("--name", help="Full name.")] = None,
    given_name: Annotated[str | None, typer.Option("--given-name")] = None,
    family_name: Annotated[str | None, typer.Option("--family-name")] = None,
    locale: Annotated[str | None, typer.Option("--locale", help="The pages' language: en or id.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="A new email address (unverified).")] = None,
    phone: Annotated[
        str | None, typer.Option("--phone", help="A new E.164 phone number (unverified).")
    ] = None,
    email_verified: Annotated[
        bool | None, typer.Option("--email-verified/--email-unverified", help="Whether the email is proven.")
    ] = None,
    phone_verified: Annotated[
        bool | None, typer.Option("--phone-verified/--phone-unverified", help="Whether the phone is proven.")
    ] = None,
    admin: Annotated[bool | None, typer.Option("--admin/--no-admin", help="The admin role.")] = None,
) -> None:
    """Change an account: only the options given (JSON of the account after)."""
    from consentry.services.admin import update_user
    from consentry.storage.audit import RequestOrigin

    given = {
        "name": name, "given_name": given_name, "family_name": family_name, "locale": locale, "email": email,
        "phone": phone, "email_verified": email_verified, "phone_verified": phone_verified, "is_admin": admin,
    }  # fmt: skip
    changes = {key: value for key, value in given.items() if value is not None}
    if not changes:
        raise fail("say what to change (see --help)")

    async def _update(runtime: Runtime) -> dict[str, Any]:
        return await update_user(runtime, _user_id(user_id), changes, origin=RequestOrigin(), now=utcnow())

    print_json(run(_update, migrate=True))


@user_app.command("delete")
def user_delete(user_id: Annotated[str, typer.Argument(help="The account's id.")]) -> None:
    """Soft-delete an account: every app loses access now; `user restore` undoes it in the grace period."""
    _bulk_user_action("soft_delete", user_id, "deleted (restorable during the grace period)")


@user_app.command("restore")
def user_restore(user_id: Annotated[str, typer.Argument(help="The account's id.")]) -> None:
    """Restore a soft-deleted account during its grace period."""
    _bulk_user_action("restore", user_id, "restored")


def _user_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise fail(f"not an account id: {value}") from None


def _bulk_user_action(action: BulkAction, user_id: str, done: str) -> None:
    from consentry.services.admin import bulk_users
    from consentry.storage.audit import RequestOrigin

    target = _user_id(user_id)

    async def _act(runtime: Runtime) -> int:
        return await bulk_users(runtime, action, [target], admin=None, origin=RequestOrigin(), now=utcnow())

    if run(_act, migrate=True) == 0:
        raise fail(f"no account {user_id} to which that applies", 1)
    out.print(f"account {user_id} {done}")


@client_app.command("list")
def client_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Every live client, newest first."""
    from consentry.services.client_management import all_clients

    async def _list(runtime: Runtime) -> list[dict[str, Any]]:
        return await all_clients(runtime, registered_by=None, limit=1000, offset=0)

    clients = run(_list, migrate=True)
    if as_json:
        print_json({"clients": clients})
        return
    for client in clients:
        out.print(f"{client['client_id']}  {client['client_name']}")


@client_app.command("show")
def client_show(client_id: Annotated[str, typer.Argument(help="The client's id.")]) -> None:
    """One client's registration (JSON; never its secret)."""
    from consentry.services.client_management import read_client

    async def _show(runtime: Runtime) -> dict[str, Any]:
        return await read_client(runtime, client_id, None)

    print_json(run(_show, migrate=True))


@client_app.command("update")
def client_update(
    client_id: Annotated[str, typer.Argument(help="The client's id.")],
    name: Annotated[str | None, typer.Option("--name", help="Name shown on the consent screen.")] = None,
    redirect_uri: Annotated[
        list[str] | None, typer.Option("--redirect-uri", help="Replaces the redirect URIs (repeatable).")
    ] = None,
    scope: Annotated[str | None, typer.Option(help="Scopes the client may ask for.")] = None,
    trusted: Annotated[
        bool | None, typer.Option("--trusted/--not-trusted", help="First-party: skips the consent screen.")
    ] = None,
    webhook_url: Annotated[str | None, typer.Option(help="Where consent change events are POSTed.")] = None,
    policy_uri: Annotated[str | None, typer.Option(help="The client's privacy policy.")] = None,
    tos_uri: Annotated[str | None, typer.Option(help="The client's terms of service.")] = None,
    policy_version: Annotated[
        str | None, typer.Option(help="A new version asks everyone's consent again.")
    ] = None,
    consent_ttl_days: Annotated[int | None, typer.Option(help="How long a remembered consent lasts.")] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Replaces the post-logout redirect URIs (repeatable).")
    ] = None,
    backchannel_logout_uri: Annotated[
        str | None, typer.Option(help="Where a logout token is POSTed when a person's session ends.")
    ] = None,
) -> None:
    """Change a client's registration: only the options given; the result is checked whole (JSON)."""
    from consentry.services.client_management import update_client
    from consentry.storage.audit import RequestOrigin

    given = {
        "client_name": name, "redirect_uris": redirect_uri, "scope": scope, "trusted": trusted,
        "webhook_url": webhook_url, "policy_uri": policy_uri, "tos_uri": tos_uri,
        "policy_version": policy_version, "consent_ttl_days": consent_ttl_days,
        "post_logout_redirect_uris": post_logout_redirect_uri,
        "backchannel_logout_uri": backchannel_logout_uri,
    }  # fmt: skip
    changes = {key: value for key, value in given.items() if value is not None}
    if not changes:
        raise fail("say what to change (see --help)")

    async def _update(runtime: Runtime) -> dict[str, Any]:
        client, webhook_secret = await update_client(
            runtime, client_id, None, changes, origin=RequestOrigin(), now=utcnow()
        )
        return client | ({"webhook_secret": webhook_secret} if webhook_secret else {})

    print_json(run(_update, migrate=True))


@client_app.command("delete")
def client_delete(client_id: Annotated[str, typer.Argument(help="The client's id.")]) -> None:
    """Delete a client: every consent it held ends and every token it holds is revoked, at once."""
    from consentry.services.cascades import delete_client
    from consentry.storage.audit import RequestOrigin

    async def _delete(runtime: Runtime) -> None:
        await delete_client(runtime, client_id, None, origin=RequestOrigin(), now=utcnow())

    run(_delete, migrate=True)
    out.print(f"client {client_id} deleted")


@client_app.command("secret")
def client_secret(
    client_id: Annotated[str, typer.Argument(help="The client's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """A new client secret (shown once); the old one stops working at once, on every node."""
    from consentry.services.client_management import regenerate_secret
    from consentry.storage.audit import RequestOrigin

    async def _rotate(runtime: Runtime) -> str:
        return await regenerate_secret(runtime, client_id, None, origin=RequestOrigin(), now=utcnow())

    secret = run(_rotate, migrate=True)
    if as_json:
        print_json({"client_id": client_id, "client_secret": secret})
    else:
        out.print(f"client_secret (shown once): [bold]{secret}[/]")


@user_app.command("grant-admin")
def user_grant_admin(
    email: Annotated[str, typer.Option("--email", help="The account to make an administrator.")],
) -> None:
    """Give an account the admin role (required by every /api/v1/admin route)."""
    from consentry.domain.identifiers import normalise_email
    from consentry.storage.audit import AuditRepository
    from consentry.storage.users import UserRepository

    async def _grant(runtime: Runtime) -> str:
        async with runtime.database.unit_of_work() as session:
            user = await UserRepository(session).find_by_email(normalise_email(email))
            if user is None:
                raise ConfigurationError(f"no account with the email {email}")
            user.is_admin = True
            await AuditRepository(session).record(
                "admin_granted", now=utcnow(), user_id=user.id, actor="admin", details={"via": "cli"}
            )
            return str(user.id)

    out.print(f"{email} is now an administrator (user_id {run(_grant, migrate=True)})")


@users_app.command("import")
def users_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON lines, or CSV with a header: email, phone, password_hash, "
            "email_verified, phone_verified.",
            exists=True,
            dir_okay=False,
        ),
    ],
) -> None:
    """Import accounts with pre-hashed passwords (argon2, bcrypt, pbkdf2-sha256) through the pipeline."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from consentry.services.user_import import ImportReport, import_file

    with file.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip()) - (1 if file.suffix.lower() == ".csv" else 0)

    async def _import(runtime: Runtime) -> ImportReport:
        columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("import", total=max(lines, 0))
            return await import_file(runtime, file, now=utcnow(), progress=lambda n: bar.advance(task, n))

    report = run(_import, migrate=True)
    out.print(
        f"imported: [bold]{report.imported}[/]  duplicates: {report.duplicates}  "
        f"failed: {report.failed}  invalid lines: {len(report.invalid)}"
    )
    for number, reason in report.invalid[:50]:
        out.print(f"  line {number}: {reason}", soft_wrap=True)
    if len(report.invalid) > 50:
        out.print(f"  … and {len(report.invalid) - 50} more invalid lines")


@users_app.command("bulk")
def users_bulk(
    action: Annotated[
        str,
        typer.Argument(
            help="soft-delete, restore, verify-email, unverify-email, verify-phone, unverify-phone"
        ),
    ],
    email: Annotated[list[str], typer.Option("--email", help="An account, by email (repeatable).")],
) -> None:
    """Soft delete, restore, or set verification on many accounts, one statement per table."""
    from consentry.domain.identifiers import normalise_email
    from consentry.services.admin import bulk_users
    from consentry.storage.audit import RequestOrigin
    from consentry.storage.users import UserRepository

    allowed = ("soft_delete", "restore", "verify_email", "unverify_email", "verify_phone", "unverify_phone")
    chosen = action.replace("-", "_")
    if chosen not in allowed:
        raise fail(
            f"unknown action {action!r}; choose one of {', '.join(a.replace('_', '-') for a in allowed)}"
        )

    async def _bulk(runtime: Runtime) -> tuple[int, int]:
        emails = [normalise_email(e) for e in email]
        async with runtime.database.read_only() as session:
            ids = await UserRepository(session).ids_by_email(emails)
        affected = await bulk_users(
            runtime,
            cast("BulkAction", chosen),
            ids,
            admin=None,
            origin=RequestOrigin(user_agent="consentry-cli"),
            now=utcnow(),
        )
        return len(ids), affected

    found, affected = run(_bulk, migrate=True)
    out.print(f"{action}: {affected} of {found} accounts found ({len(email)} asked for) changed")


@keys_app.command("rotate")
def keys_rotate(
    activate_after: Annotated[
        int,
        typer.Option(
            "--activate-after",
            min=0,
            help="Seconds the new keys are published before they sign (default: the JWKS's cache lifetime).",
        ),
    ] = JWKS_MAX_AGE,
) -> None:
    """New signing keys (RS256, ES256), published at once; every node signs with them after --activate-after
    seconds, and the old keys stay in the JWKS until their tokens expire."""

    async def _rotate(runtime: Runtime) -> list[str]:
        await runtime.keys.ensure_loaded(now=utcnow())
        return await runtime.keys.rotate(now=utcnow(), activate_after=timedelta(seconds=activate_after))

    for kid in run(_rotate, migrate=True):
        out.print(f"new signing key: [bold]{kid}[/]")
    out.print(f"Published now; every node signs with them in {activate_after} s.")


@pseudonyms_app.command("rotate")
def pseudonyms_rotate() -> None:
    """Start a new pseudonym version for sectors still to come; no sector's pseudonyms change."""

    async def _rotate(runtime: Runtime) -> int:
        async with runtime.database.unit_of_work() as session:  # make sure a first version exists
            await runtime.subjects.ensure_version(session, now=utcnow())
        return await runtime.subjects.rotate(now=utcnow())

    version = run(_rotate, migrate=True)
    out.print(
        f"pseudonym version [bold]{version}[/] is active for new sectors; `pseudonyms migrate` moves others"
    )


@pseudonyms_app.command("migrate")
def pseudonyms_migrate(
    sector: Annotated[str | None, typer.Option(help="The sector (a host) to move.")] = None,
    all_sectors: Annotated[bool, typer.Option("--all", help="Move every sector.")] = False,
    window_days: Annotated[
        int, typer.Option(min=1, max=365, help="How long the previous pseudonyms stay valid beside the new.")
    ] = 30,
) -> None:
    """Move sectors to the active version: for the window their clients see the new sub and sub_previous."""
    if (sector is None) == (not all_sectors):
        raise fail("give --sector HOST or --all")

    from consentry.services.pseudonyms import migrate_sectors

    async def _migrate(runtime: Runtime) -> tuple[list[SectorPin], int]:
        now = utcnow()
        moved = await migrate_sectors(runtime, sector, window=timedelta(days=window_days), now=now)
        return moved, await runtime.subjects.issuing_version(now=now)

    moved, active = run(_migrate, migrate=True)
    for pin in moved:
        out.print(f"{pin.sector}: version {pin.previous_version} → {pin.version} until {pin.migrating_until}")
    if not moved:
        out.print(f"no sector to move: every one is on version {active}, the active one")


@pseudonyms_app.command("rollback")
def pseudonyms_rollback(
    sector: Annotated[str | None, typer.Option(help="Only this sector (a host).")] = None,
) -> None:
    """Put migrating sectors (or one) back on their previous version at once; with none migrating, undo the
    last rotation."""

    async def _rollback(runtime: Runtime) -> tuple[list[SectorPin], int]:
        return await runtime.subjects.rollback(sector, now=utcnow())

    restored, active = run(_rollback, migrate=True)
    for pin in restored:
        out.print(f"{pin.sector}: back on version {pin.version}")
    out.print(f"pseudonym version [bold]{active}[/] is active for new sectors")


DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "consentry-demo"


@app.command()
def demo() -> None:
    """Seed a demo user and client, and print a URL that walks through sign-in, consent and connected apps."""
    from consentry.http.routers.demo import DEMO_SCOPE, demo_redirect_uri
    from consentry.services.client_registration import register_client
    from consentry.services.users import create_user
    from consentry.storage.users import UserRepository

    async def _seed(runtime: Runtime) -> str:
        if not runtime.settings.is_development:
            raise ConfigurationError("the demo runs in development mode only (CONSENTRY_ENV=development)")
        async with runtime.database.unit_of_work() as session:
            if await UserRepository(session).find_by_email(DEMO_EMAIL) is None:
                await create_user(
                    session,
                    passwords=runtime.passwords,
                    now=utcnow(),
                    email=DEMO_EMAIL,
                    password=DEMO_PASSWORD,
                    verified=True,
                )
            metadata = build_client_metadata(
                name="Consentry Demo App",
                redirect_uris=[demo_redirect_uri(runtime.issuer)],
                scopes=Scopes.parse(DEMO_SCOPE),
                known_scopes=frozenset((await CatalogueRepository(session).catalogue()).scopes),
                token_endpoint_auth_method="none",
            )
            issued = await register_client(
                session,
                metadata,
                secret_hasher=runtime.secret_hasher,
                secret_box=runtime.secret_box,
                now=utcnow(),
            )
        return f"{runtime.issuer}/demo/start?client_id={issued.client_id}"

    url = run(_seed, migrate=True)
    out.print("Demo ready. With `consentry serve` running, open:")
    out.print(f"  [bold]{url}[/]", soft_wrap=True)
    out.print(f"Sign in as [bold]{DEMO_EMAIL}[/] with password [bold]{DEMO_PASSWORD}[/], allow the demo app,")
    out.print("see the code exchange on the callback page, then revoke it under Connected apps.")


def main() -> None:
    app()
