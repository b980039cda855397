"""policyqa.api: the HTTP API (FastAPI): one router per feature (``routes/``), the schemas, the
dependencies, the JSON errors and the limits (body size, answer admission); ``cli`` is
``policyqa serve``. It serves :class:`policyqa.service.QAService` and mounts the chat page."""
