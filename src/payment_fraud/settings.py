"""Project settings: Kedro defaults, written out because the stream service loads the same
configuration and must resolve the same environments as ``kedro run``.

No hooks are registered, so nothing runs per node beyond the node functions themselves.
"""

from typing import Any

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader

CONFIG_LOADER_ARGS: dict[str, Any] = {
    "base_env": "base",
    "default_run_env": "local",
}
