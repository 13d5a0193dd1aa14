"""The alert intake service: webhooks in, durable inbox, playbook runs out."""
