"""The shared task library the playbook flows are composed of."""
