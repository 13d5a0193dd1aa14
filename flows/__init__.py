"""Playbook flows: each reads top to bottom like its seed playbook section."""
