"""Names vulture cannot see used: called by a framework, read by a library, or a column of the schema.

`make test` runs vulture over `src` with this file (pyproject: [tool.vulture]); anything else it reports is dead.
"""

# ruff: noqa
_ = object()

# uvicorn's factory (`consentry.http.app:app_from_environment`, a string in cli.serve)
app_from_environment

# pydantic: request fields read by model_dump(), model configuration
current_password
new_password
error_description
model_config
# RFC 7592 §2.2: a client echoes what it was given in its update; accepted, never stored
registration_access_token
registration_client_uri
client_secret_expires_at
client_id_issued_at

# pydantic-settings: every CONSENTRY_RATE_LIMIT_* is read by Policy.from_settings, by name
rate_limit_login_failures_per_identifier
rate_limit_login_failures_per_ip
rate_limit_code_failures_per_ip
rate_limit_code_sends_per_identifier_and_ip
rate_limit_code_sends_per_ip
rate_limit_code_resend_interval
rate_limit_client_auth_failures_per_client_and_ip
rate_limit_client_auth_failures_per_ip
rate_limit_registrations_per_ip
rate_limit_client_registrations_per_ip

# SQLAlchemy: declarative configuration, TypeDecorator hooks, the DB-API cursor protocol, enum values stored in
# columns, and columns written for operators and audits (they are the schema, read by SQL and by people)
type_annotation_map
impl
cache_ok
_.process_result_value
_.load_dialect_impl
_.arraysize
_._make_new_cursor
_._aenter_cursor
PUBLIC
PAIRWISE
CLIENT_SECRET_BASIC
CLIENT_SECRET_POST
last_seen_at
code_sent_at
_.code_sent_at
secret_rotated_at
_.secret_rotated_at
algorithm
activated_at
delivered_at
in_dlq
claimed_by
OAUTH2  # UpstreamKind("oauth2"), from the CLI and the admin API
token_expires_at
MIGRATIONS_LOCK  # migrations/env.py (outside vulture's paths)
# uvicorn.Server reads it to stop serving (consentry worker --port)
_.should_exit
# aiokafka's ConsumerRebalanceListener hooks
_.on_partitions_revoked
_.on_partitions_assigned

# What tests observe of running machinery (the checkpoint thread's rounds, the doorbell's listener, the rate
# limiter's memory, the engines a test listens on)
_.rounds
_.listened_to
_.held_keys
_.sync_engines

# Read by `make messages` (Babel extracts what N_ marks), not by code
STANDARD_SCOPE_DESCRIPTIONS
# Jinja2's environment: the pages' date filters
_.filters
# The admin charts' bars: read by templates/admin_chart.html
_.y
_.series
