"""API and dashboard settings: the core :class:`~adpilot.config.Settings` plus server options,
all read from ``ADPILOT_*`` environment variables when the app is built."""

from __future__ import annotations

from pydantic import Field, SecretStr

from adpilot.config import Settings


class ApiSettings(Settings):
    """Every field can be set by an ``ADPILOT_<NAME>`` variable (lists as JSON)."""

    max_body_bytes: int = Field(10 * 1024 * 1024, description="Largest request body (413 above).")
    max_events_per_batch: int = Field(50_000, description="Most events in one POST /v1/events.")
    max_page_size: int = Field(500, description="Largest `limit` for paginated lists.")
    cors_origins: list[str] = Field(default_factory=list,
                                    description="Origins allowed by CORS; empty = CORS off.")
    ingest_roots: list[str] = Field(default_factory=list,
                                    description="Folders a server-side ingest path may be under; "
                                                "empty = server paths refused.")
    session_secret: SecretStr | None = Field(None, description="Signs dashboard session cookies; "
                                             "unset = random per process (logins end on restart).")
    session_hours: float = 12.0
    cookie_secure: bool = Field(False, description="Set the Secure flag (behind HTTPS).")
    admin_user: str | None = None
    admin_password: SecretStr | None = None
    llm_backend: str = Field("llamacpp", description="Backend for copy generation.")
    llm_model: str | None = None
    llm_base_url: str | None = None
    job_workers: int = Field(2, ge=1, description="Threads running background jobs.")
    events_worker_process: bool = Field(True, description="Process the event inbox in a "
                                        "separate, lower-priority process (false: a thread of "
                                        "the server, which competes with requests).")
    gc_freeze: bool = Field(True, description="While serving, keep the objects that exist at "
                            "startup (modules, the app) out of the garbage collector's full "
                            "passes: they take well under a millisecond instead of tens, which "
                            "would otherwise stall every request in flight.")
    key_cache_seconds: float = Field(5.0, description="How long a verified API key is trusted "
                                     "before it is looked up again (revocation delay).")
    api_docs: bool = Field(False, description="Serve /docs, /redoc and /openapi.json. Off by "
                           "default: the schema is the same for every install (published with "
                           "the project), the docs pages load scripts from a CDN, and a public "
                           "map of every route helps nobody but a prober. Turn on for development.")
    auth_max_failures: int = Field(5, ge=0, description="Failed logins or API-key checks for "
                                   "one account (user name / key id) within the window before "
                                   "it is locked; 0 = no throttling.")
    auth_max_failures_per_client: int = Field(20, ge=0, description="The same for one client "
                                              "address, whatever accounts it tries.")
    auth_window_seconds: float = Field(900.0, gt=0, description="Failures older than this are "
                                       "forgotten.")
    auth_lockout_seconds: float = Field(60.0, gt=0, description="First lockout; each further "
                                        "lockout of the same account or client doubles it.")
    auth_lockout_max_seconds: float = Field(3600.0, gt=0, description="Longest lockout.")
    report_rate_per_minute: float = Field(30.0, ge=0, description="Requests per minute one "
                                          "client may make to the report and overview routes "
                                          "(a token bucket); 0 = no limit.")
    report_burst: int = Field(10, ge=1, description="Report requests a client may make at once "
                              "before the per-minute rate applies.")


def get_api_settings() -> ApiSettings:
    """Read the API settings from the environment now."""
    return ApiSettings()
