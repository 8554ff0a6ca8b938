"""kedro-telemetry (a dependency of Kedro) posts to an HTTP endpoint with a 10 s timeout from its
hooks: once a catalog is created, and after a CLI command returns. A service never waits on it,
in any project, so kedro-stream unregisters it from the hook managers it runs under."""

from __future__ import annotations

from pluggy import PluginManager

TELEMETRY_PLUGIN = "kedro-telemetry"


def unregister_telemetry(manager: PluginManager) -> None:
    """Idempotent: pluggy keeps listing a plugin's distribution after it is unregistered."""
    for plugin, dist in manager.list_plugin_distinfo():
        if dist.project_name == TELEMETRY_PLUGIN and manager.is_registered(plugin):
            manager.unregister(plugin=plugin)
