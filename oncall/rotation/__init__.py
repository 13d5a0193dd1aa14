"""The on-call rotation: who is primary, secondary and escalation manager when."""
