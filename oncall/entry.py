"""The `oncall` executable: the control plane's credentials first, then the CLI.

Prefect reads its settings once, when it is first imported; the auth string of the local
server must be in the environment before that, so it is set here, before `oncall.cli`
(which imports Prefect) is loaded.
"""

from __future__ import annotations

from pydantic import ValidationError


def main() -> None:
    """Run the `oncall` command line with PREFECT_API_AUTH_STRING in effect."""
    from oncall.prefect_auth import load_into_environment
    from oncall.settings import OncallSettings

    try:
        home = OncallSettings().home
    except ValidationError:
        home = None  # the command reports the bad setting itself
    if home is not None:
        load_into_environment(home)
    from oncall.cli import app

    app()
