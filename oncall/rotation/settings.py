"""Where the rotation file is (``ONCALL_ROTATION_FILE``), until OncallSettings has it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The seed's four-week table, shipped with the checkout.
EXAMPLE_ROTATION = Path(__file__).resolve().parents[2] / "examples" / "rotation.yaml"


class RotationSettings(BaseSettings):
    """Rotation settings (environment prefix ``ONCALL_ROTATION_``)."""

    model_config = SettingsConfigDict(env_prefix="ONCALL_ROTATION_", extra="ignore")

    file: Path | None = Field(
        default=None,
        description="The on-call rotation (YAML); default: the shipped examples/rotation.yaml.",
    )

    @property
    def path(self) -> Path:
        """The rotation file to read."""
        return self.file or EXAMPLE_ROTATION
