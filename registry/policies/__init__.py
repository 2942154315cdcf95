"""Repository and organisation policies: immutable tags, tag retention, namespace quotas."""
