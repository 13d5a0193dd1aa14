"""Fakes of the product's peers (Slack, ...) served over real HTTP on 127.0.0.1."""
