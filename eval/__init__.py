"""policyqa.eval."""
