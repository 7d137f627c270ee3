"""Consentry: an OAuth 2.0 / OpenID Connect provider built around the user's consent."""

__version__ = "0.1.0"
