"""A local emulator of the Hightouch, Slack and Linear APIs (demo, e2e tests, benchmarks)."""

from triage.sandbox.server import Sandbox, SandboxServer, environment
from triage.sandbox.world import SCENARIOS, ScenarioError, World, load_scenario_file

__all__ = ["SCENARIOS", "Sandbox", "SandboxServer", "ScenarioError", "World", "environment", "load_scenario_file"]
