"""policyqa.ui."""
