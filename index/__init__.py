"""policyqa.index."""
