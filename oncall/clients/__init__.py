"""Clients: the only code that talks to the outside world, each to one peer.

They are put together for a playbook in :mod:`oncall.wiring`.
"""
