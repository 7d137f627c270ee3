"""Storage: the only package that speaks SQL.

One port per aggregate (``users``, ``clients``, ``consents``, ``tokens``, ``sessions``, ``audit``,
``webhooks``, ``pseudonyms``, ``signing_keys``, ``registrations``), the records they hand out (``records``),
the engine and unit of work (``database``), and the machinery behind the hot paths (``group_commit``,
``batched_reads``).
"""
