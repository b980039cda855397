"""policyqa.ui: the chat page (Gradio), mounted at ``/ui`` behind an allow-list of the routes it
uses; it asks through the same :class:`policyqa.service.QAService` as the API."""
