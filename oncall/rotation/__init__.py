"""The on-call rotation: who is primary, secondary and escalation manager when."""

from oncall.rotation.loader import RotationFileError, load_rotation, parse_rotation
from oncall.rotation.model import OnCall, Override, Person, Role, Rotation, Rung, Week
from oncall.rotation.settings import RotationSettings

__all__ = [
    "OnCall",
    "Override",
    "Person",
    "Role",
    "Rotation",
    "RotationFileError",
    "RotationSettings",
    "Rung",
    "Week",
    "load_rotation",
    "parse_rotation",
]
