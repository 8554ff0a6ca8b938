from kedro.config import OmegaConfigLoader

from mini_project.hooks import RecordingHooks

CONFIG_LOADER_CLASS = OmegaConfigLoader
HOOKS = (RecordingHooks(),)
