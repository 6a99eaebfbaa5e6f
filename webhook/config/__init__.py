"""The injection config: profiles of sidecars and Pod settings, validated once at load.

Loading is the only place a config can be wrong; every later step trusts the model. The
model is ``model``, the checks every profile's container specs pass are ``container_checks``,
and reading YAML text or a file into the model is ``loading``. The names below are the
package's whole API (``from webhook.config import Config, load_config_file``).
"""

from webhook.config.loading import (
    example_config,
    example_config_text,
    load_config_file,
    load_config_text,
    override,
    parse_config,
)
from webhook.config.model import (
    DEFAULT_REQUESTERS,
    Config,
    Limits,
    Namespaces,
    OverridePolicy,
    PodInfo,
    Probes,
    ProbeTiming,
    Profile,
    Requesters,
    ResourceOverrides,
    ServiceAccountToken,
)

__all__ = [
    "DEFAULT_REQUESTERS",
    "Config",
    "Limits",
    "Namespaces",
    "OverridePolicy",
    "PodInfo",
    "ProbeTiming",
    "Probes",
    "Profile",
    "Requesters",
    "ResourceOverrides",
    "ServiceAccountToken",
    "example_config",
    "example_config_text",
    "load_config_file",
    "load_config_text",
    "override",
    "parse_config",
]
