"""policyqa.corpus."""
