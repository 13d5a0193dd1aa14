"""The Slack client: the only code that talks to the Slack Web API.

Retries honour ``Retry-After`` (PROTOCOLS.md "Slack"); what is left of a failure is
translated into the product's errors. Without a bot token nothing is sent: every call
logs where the message would have gone, so flows work before Slack is set up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, NamedTuple, TypeVar
from urllib.error import URLError

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.web import SlackResponse

from oncall.errors import PermanentError, TransientError

log = logging.getLogger("oncall.slack")

SLACK_API_URL = "https://slack.com/api/"
# Slack's own words for failures that are worth another try later.
_TRANSIENT_CODES = {
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}
T = TypeVar("T")


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class SlackSettings(BaseSettings):
    """How the product reaches Slack (environment prefix ``ONCALL_SLACK_``)."""

    model_config = SettingsConfigDict(env_prefix="ONCALL_SLACK_", extra="ignore")

    bot_token: SecretStr | None = Field(
        default=None, description="Bot token (xoxb-...); without it messages go to the log."
    )
    channel: str = Field(
        default="#gremlinsai-alerts",
        description="Channel (name or ID) for incident messages and the on-call hand-off.",
    )
    api_url: str = Field(
        default=SLACK_API_URL, description="Web API base URL; tests point it at a fake server."
    )
    signing_secret: SecretStr | None = Field(
        default=None, description="Signing secret that verifies Slack's requests to us."
    )
    approvers: Annotated[list[str], NoDecode, BeforeValidator(_comma_list)] = Field(
        default_factory=list,
        description="Slack user IDs allowed to approve mitigations (comma-separated).",
    )
    timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one Web API call.")
    max_retries: int = Field(
        default=2, ge=0, description="Retries after HTTP 429 (Retry-After), 5xx or a reset."
    )


class PostedMessage(NamedTuple):
    """Where a message landed: channel ID and timestamp (``ts``; empty if only logged)."""

    channel: str
    ts: str


class SlackUnavailable(TransientError):
    """Slack failed in a way that may pass (rate limit, 5xx, network); ``code`` says how."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class SlackRefused(PermanentError):
    """Slack refused the call for good (e.g. ``channel_not_found``); ``code`` is Slack's."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def translate(exc: SlackApiError, what: str) -> Exception:
    """Map a ``SlackApiError`` onto a transient or permanent error."""
    status = int(getattr(exc.response, "status_code", 0) or 0)
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    code = str(data.get("error", f"http_{status}"))
    message = f"{what}: Slack said {code} (HTTP {status})"
    if status == 429 or status >= 500 or code in _TRANSIENT_CODES:
        return SlackUnavailable(message, code)
    return SlackRefused(message, code)


class SlackClient:
    """Posts, edits and threads messages, and keeps user groups in step."""

    def __init__(
        self,
        token: str | None,
        base_url: str = SLACK_API_URL,
        timeout_s: float = 10.0,
        max_retries: int = 2,
    ) -> None:
        self.enabled = bool(token)
        self.web = WebClient(
            token=token or None,
            base_url=base_url,
            timeout=max(1, round(timeout_s)),
            retry_handlers=[
                RateLimitErrorRetryHandler(max_retry_count=max_retries),
                ServerErrorRetryHandler(max_retry_count=max_retries),
                ConnectionErrorRetryHandler(max_retry_count=max_retries),
            ],
        )

    @classmethod
    def from_settings(cls, settings: SlackSettings) -> SlackClient:
        """A client as the settings say (log-only without a bot token)."""
        token = settings.bot_token.get_secret_value() if settings.bot_token else None
        return cls(token, settings.api_url, settings.timeout_s, settings.max_retries)

    def _call(self, what: str, thunk: Callable[[], T]) -> T:
        try:
            return thunk()
        except SlackApiError as exc:
            raise translate(exc, what) from exc
        except (URLError, OSError) as exc:
            raise SlackUnavailable(f"{what}: Slack unreachable: {exc}", "unreachable") from exc
        except SlackClientError as exc:
            raise PermanentError(f"{what}: {exc}") from exc

    def post_message(
        self,
        channel: str,
        text: str,
        blocks: Sequence[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> PostedMessage:
        """Post a message (a thread reply with ``thread_ts``); ``text`` is the fallback."""
        if not self.enabled:
            log.info("(no Slack token; would post to %s) %s", channel, text)
            return PostedMessage(channel, "")
        response: SlackResponse = self._call(
            f"post to {channel}",
            lambda: self.web.chat_postMessage(
                channel=channel,
                text=text,
                blocks=list(blocks) if blocks else None,
                thread_ts=thread_ts,
                metadata=metadata,
            ),
        )
        return PostedMessage(str(response["channel"]), str(response["ts"]))

    def update_message(
        self,
        channel: str,
        ts: str,
        text: str,
        blocks: Sequence[dict[str, Any]] | None = None,
    ) -> PostedMessage:
        """Edit one of the app's own messages in place."""
        if not self.enabled:
            log.info("(no Slack token; would update %s %s) %s", channel, ts, text)
            return PostedMessage(channel, ts)
        response: SlackResponse = self._call(
            f"update {channel} {ts}",
            lambda: self.web.chat_update(
                channel=channel, ts=ts, text=text, blocks=list(blocks) if blocks else None
            ),
        )
        return PostedMessage(str(response["channel"]), str(response["ts"]))

    def set_usergroup_members(self, usergroup: str, user_ids: Sequence[str]) -> list[str]:
        """Replace the whole membership of a user group; returns the new members."""
        if not self.enabled:
            log.info("(no Slack token; would set %s to %s)", usergroup, ", ".join(user_ids))
            return list(user_ids)
        response: SlackResponse = self._call(
            f"update user group {usergroup}",
            lambda: self.web.usergroups_users_update(usergroup=usergroup, users=list(user_ids)),
        )
        group = response.get("usergroup") or {}
        return [str(u) for u in group.get("users", user_ids)]

    def history(
        self, channel: str, oldest: datetime | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        """Recent messages of a channel, newest first, with their metadata."""
        if not self.enabled:
            return []
        kwargs: dict[str, Any] = {"channel": channel, "limit": limit, "include_all_metadata": True}
        if oldest is not None:
            kwargs["oldest"] = f"{oldest.timestamp():.6f}"
        response: SlackResponse = self._call(
            f"read history of {channel}", lambda: self.web.conversations_history(**kwargs)
        )
        return list(response.get("messages") or [])

    def find_message(
        self, channel: str, event_type: str, key: str, oldest: datetime | None = None
    ) -> PostedMessage | None:
        """The app's message whose metadata carries ``event_type`` and ``key``, if posted."""
        if not is_channel_id(channel):
            # conversations.history takes IDs only; a name (#ops) cannot be searched.
            return None
        for message in self.history(channel, oldest):
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == event_type and payload.get("key") == key:
                return PostedMessage(channel, str(message["ts"]))
        return None


def is_channel_id(channel: str) -> bool:
    """Whether ``channel`` is a conversation ID (C..., G..., D...) rather than a name."""
    return channel[:1] in ("C", "G", "D") and channel.isalnum() and channel.isupper()
