"""hightouch-triage: alert Slack when Hightouch syncs fail, open Linear issues when they keep failing."""

# The one version source: `hightouch-triage --version`, the package metadata (pyproject.toml
# reads it) and the release workflow's tag check all read this line.
__version__ = "0.2.0"
