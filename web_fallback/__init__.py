"""web_fallback package."""
