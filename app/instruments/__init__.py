"""The chapter's instruments as pure numpy functions, one module each."""
