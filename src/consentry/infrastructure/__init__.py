"""Long-lived machinery the use cases share, built once per process by the runtime: the client directory,
rate limits, pairwise subjects, one-time-code senders, and the consent-usage recorder. Below the services,
above storage; no use case lives here."""
