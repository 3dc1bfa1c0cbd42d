"""The air-quality flow's configuration: typed groups (`flow.py`), built from TOML tables and
`build_flow` keywords (`tables.py`), with option machinery in `options.py`;
the error itself is `core.errors.ConfigError`, which any layer may raise.

An uncaught `ConfigError` (as when `python -m bytewax.run` builds a flow from a bad
configuration) is printed as its one line, without a traceback.
"""

from config.flow import (
    DEFAULT_IMPUTE_FIELDS,
    GC_THRESHOLD,
    KEY_MODES,
    ChannelsConfig,
    CleaningConfig,
    DetectionConfig,
    EpaConfig,
    FlatlineConfig,
    FlowConfig,
    GapsConfig,
    ImputationConfig,
    OutputsConfig,
    PurpleAirConfig,
    RunConfig,
    SampleConfig,
    ScalingConfig,
    SourceConfig,
    SpatialConfig,
    ValidationConfig,
    WebhookConfig,
)
from config.options import install_excepthook
from config.tables import KEYWORDS, read_toml, resolve, tables_of
from core.errors import ConfigError

__all__ = [
    "DEFAULT_IMPUTE_FIELDS",
    "GC_THRESHOLD",
    "KEYWORDS",
    "KEY_MODES",
    "ChannelsConfig",
    "CleaningConfig",
    "ConfigError",
    "DetectionConfig",
    "EpaConfig",
    "FlatlineConfig",
    "FlowConfig",
    "GapsConfig",
    "ImputationConfig",
    "OutputsConfig",
    "PurpleAirConfig",
    "RunConfig",
    "SampleConfig",
    "ScalingConfig",
    "SourceConfig",
    "SpatialConfig",
    "ValidationConfig",
    "WebhookConfig",
    "read_toml",
    "resolve",
    "tables_of",
]

install_excepthook()
