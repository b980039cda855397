"""policyqa.api."""
