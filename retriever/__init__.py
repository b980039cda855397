"""policyqa.retriever."""
