"""Slack where the people are: the incident message (Block Kit) and Approve / Reject clicks.

`oncall.slack.notifier.SlackNotifier` keeps one message per incident, edited in place, with
details in its thread; `oncall.slack.interactivity.SlackInteractivity` is the intake's
``POST /v1/slack/interactivity``. Submodules are imported where used, so a flow process
does not import FastAPI.
"""
